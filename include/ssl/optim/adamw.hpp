#pragma once
// Adam with decoupled weight decay, as torch.optim.AdamW (amsgrad off). At step t:
//   w = w * (1 - lr * wd)                              (decoupled decay, before the moments)
//   m = b1 * m + (1 - b1) * g
//   v = b2 * v + (1 - b2) * g^2
//   w = w - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// lr and wd are the base values times the parameter's group scales. With wd = 0 this is Adam.
// t is the optimizer's step count (torch counts per parameter; they differ only for parameters
// that were frozen for some steps).
#include <cmath>

#include "optimizer.hpp"
#include "../core/profile.hpp"
#if defined(__CUDACC__)
#include "../backend/cuda/optim.cuh"
#endif

namespace ssl {

struct adamw_options {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 1e-2f;
};

/// adamw<B>: the parameters and both moments live on B (`ssl::adamw opt(params, {...})` deduces B).
template <class B = cpu>
class adamw : public optimizer_base<B> {
  using base = optimizer_base<B>;
  using base::add_slot, base::state, base::params_, base::step_;

 public:
  using base::lr_of, base::weight_decay_of;
  explicit adamw(param_list<B> params, const adamw_options& o = {}, std::vector<param_group> groups = {})
      : base("adamw", std::move(params), o.lr, o.weight_decay, std::move(groups)), opt_(o) {
    check(o.beta1 >= 0.0f && o.beta1 < 1.0f, "adamw: beta1 must be in [0, 1), got ", o.beta1);
    check(o.beta2 >= 0.0f && o.beta2 < 1.0f, "adamw: beta2 must be in [0, 1), got ", o.beta2);
    check(o.eps >= 0.0f, "adamw: eps must be >= 0, got ", o.eps);
    exp_avg_ = add_slot("exp_avg");
    exp_avg_sq_ = add_slot("exp_avg_sq");
  }

  const adamw_options& options() const { return opt_; }

  void step() {
    SSL_PROFILE_SCOPE("adamw");
    ++step_;
    if constexpr (std::same_as<B, cpu>)
      step_host();
    else
      this->step_device();
  }

 private:
  void step_host() {
    const float b1 = opt_.beta1, b2 = opt_.beta2, eps = opt_.eps;
    const double t = double(step_);
    const float bc1 = float(1.0 - std::pow(double(b1), t));
    const float inv_sqrt_bc2 = float(1.0 / std::sqrt(1.0 - std::pow(double(b2), t)));
    this->for_each_chunk([&](const typename base::chunk& ch) {
      parameter<cpu>& p = *params_[ch.param].p;
      const float lr = lr_of(ch.param);
      const float decay = 1.0f - lr * weight_decay_of(ch.param);
      const float step_size = lr / bc1;
      float* __restrict w = p.value.data();
      const float* __restrict g = p.grad.data();
      float* __restrict m = state(exp_avg_, ch.param).data();
      float* __restrict v = state(exp_avg_sq_, ch.param).data();
      for (int64_t j = ch.begin; j < ch.end; ++j) {
        const float gj = g[j];
        const float mj = b1 * m[j] + (1.0f - b1) * gj;
        const float vj = b2 * v[j] + (1.0f - b2) * gj * gj;
        m[j] = mj;
        v[j] = vj;
        w[j] = w[j] * decay - step_size * mj / (std::sqrt(vj) * inv_sqrt_bc2 + eps);
      }
    });
  }
#if defined(__CUDACC__)
  // One fused kernel per parameter (backend/cuda/optim.cuh), same formula.
  void step_device() {
    this->for_each_param([&](size_t i) {
      parameter<B>& p = *params_[i].p;
      ops::adamw_update(p.value, p.grad, state(exp_avg_, i), state(exp_avg_sq_, i), step_, lr_of(i), opt_.beta1,
                        opt_.beta2, opt_.eps, weight_decay_of(i));
    });
  }
#endif

  adamw_options opt_;
  size_t exp_avg_ = 0, exp_avg_sq_ = 0;
};

}  // namespace ssl
