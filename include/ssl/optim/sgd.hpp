#pragma once
// Stochastic gradient descent with momentum, as torch.optim.SGD (dampening 0):
//   g = grad + wd * w                        (coupled L2 weight decay)
//   b = momentum * b + g                     (b starts at 0, so b_1 = g_1 as in PyTorch)
//   d = nesterov ? g + momentum * b : b      (d = g when momentum == 0)
//   w = w - lr * d
// lr and wd are the base values times the parameter's group scales.
#include "optimizer.hpp"
#if defined(__CUDACC__)
#include "../backend/cuda/optim.cuh"
#endif

namespace ssl {

struct sgd_options {
  float lr = 0.1f;
  float momentum = 0.0f;
  float weight_decay = 0.0f;
  bool nesterov = false;
};

/// sgd<B>: the parameters and the momentum buffers live on B (`ssl::sgd opt(params, {...})`
/// deduces B from the param_list).
template <class B = cpu>
class sgd : public optimizer_base<B> {
  using base = optimizer_base<B>;
  using base::add_slot, base::state, base::params_, base::step_;

 public:
  using base::lr_of, base::weight_decay_of;
  explicit sgd(param_list<B> params, const sgd_options& o = {}, std::vector<param_group> groups = {})
      : base("sgd", std::move(params), o.lr, o.weight_decay, std::move(groups)), opt_(o) {
    check(o.momentum >= 0.0f && o.momentum < 1.0f, "sgd: momentum must be in [0, 1), got ", o.momentum);
    check(!o.nesterov || o.momentum > 0.0f, "sgd: nesterov needs momentum > 0, got ", o.momentum);
    if (o.momentum > 0.0f) momentum_slot_ = add_slot("momentum_buffer");
  }

  const sgd_options& options() const { return opt_; }

  void step() {
    ++step_;
    if constexpr (std::same_as<B, cpu>)
      step_host();
    else
      this->step_device();
  }

 private:
  void step_host() {
    const float mu = opt_.momentum;
    const bool nesterov = opt_.nesterov, use_momentum = mu > 0.0f;
    this->for_each_chunk([&](const typename base::chunk& ch) {
      parameter<cpu>& p = *params_[ch.param].p;
      const float lr = lr_of(ch.param), wd = weight_decay_of(ch.param);
      float* __restrict w = p.value.data();
      const float* __restrict g = p.grad.data();
      if (!use_momentum) {
        for (int64_t j = ch.begin; j < ch.end; ++j) w[j] -= lr * (g[j] + wd * w[j]);
        return;
      }
      float* __restrict b = state(momentum_slot_, ch.param).data();
      for (int64_t j = ch.begin; j < ch.end; ++j) {
        const float d = g[j] + wd * w[j];
        const float bj = mu * b[j] + d;
        b[j] = bj;
        w[j] -= lr * (nesterov ? d + mu * bj : bj);
      }
    });
  }
#if defined(__CUDACC__)
  // One fused kernel per parameter (backend/cuda/optim.cuh), same formula.
  void step_device() {
    const bool use_momentum = opt_.momentum > 0.0f;
    this->for_each_param([&](size_t i) {
      parameter<B>& p = *params_[i].p;
      ops::sgd_update(p.value, p.grad, use_momentum ? &state(momentum_slot_, i) : nullptr, lr_of(i), opt_.momentum,
                      weight_decay_of(i), opt_.nesterov);
    });
  }
#endif

  sgd_options opt_;
  size_t momentum_slot_ = 0;
};

}  // namespace ssl
