#pragma once
// LARS (You et al. 2017) in the form of the SimCLR code (lars_optimizer.py, classic momentum),
// also used by BYOL. Per parameter w with gradient g:
//   u = g + wd * w                                   (weight decay added to the gradient)
//   r = eta * ||w|| / ||u||  if ||w|| > 0 and ||u|| > 0, else 1   (trust ratio)
//   b = momentum * b + lr * r * u
//   w = w - (nesterov ? momentum * b + lr * r * u : b)
// Biases and norm parameters (param_kind::bias / norm) are excluded from both the weight
// decay and the adaptation (r = 1) when exclude_bias_and_norm is set (the default).
// lr and wd are the base values times the parameter's group scales.
// (BYOL applies lr after the momentum, b = m b + r u, w -= lr b: identical for a constant lr.)
#include <cmath>

#include "optimizer.hpp"
#if defined(__CUDACC__)
#include "../backend/cuda/optim.cuh"
#endif

namespace ssl {

struct lars_options {
  float lr = 0.3f;
  float momentum = 0.9f;
  float weight_decay = 1e-6f;
  float eta = 1e-3f;  // trust coefficient
  bool nesterov = false;
  bool exclude_bias_and_norm = true;
};

/// lars<B>: the parameters and the momentum buffers live on B (`ssl::lars opt(params, {...})`
/// deduces B). On the device the norms and trust ratios never leave it during a step.
template <class B = cpu>
class lars : public optimizer_base<B> {
  using base = optimizer_base<B>;
  using base::add_slot, base::state, base::params_, base::step_, base::chunks_;

 public:
  using base::lr_of, base::weight_decay_of;
  explicit lars(param_list<B> params, const lars_options& o = {}, std::vector<param_group> groups = {})
      : base("lars", std::move(params), o.lr, o.weight_decay, std::move(groups)), opt_(o) {
    check(o.momentum >= 0.0f && o.momentum < 1.0f, "lars: momentum must be in [0, 1), got ", o.momentum);
    check(o.eta > 0.0f, "lars: trust coefficient eta must be > 0, got ", o.eta);
    momentum_slot_ = add_slot("momentum_buffer");
    partial_.resize(chunks_.size());
    ratio_.assign(params_.size(), 1.0f);
    norms_.resize(params_.size());
    if constexpr (!std::same_as<B, cpu>)
      for (size_t i = 0; i < params_.size(); ++i) ratio_device_.emplace_back(shape{1}, 1.0f);
  }

  const lars_options& options() const { return opt_; }
  /// Whether parameter i gets weight decay and layer adaptation.
  bool adapted(size_t i) const { return !(opt_.exclude_bias_and_norm && params_[i].p->is_bias_or_norm()); }

  void step() {
    ++step_;
    if constexpr (std::same_as<B, cpu>)
      step_host();
    else
      this->step_device();
  }

  /// Trust ratio of each parameter at the last step (1 for excluded ones; read back from the
  /// device on the GPU).
  const std::vector<float>& trust_ratios() const {
    if constexpr (!std::same_as<B, cpu>)
      for (size_t i = 0; i < ratio_device_.size(); ++i) ratio_device_[i].copy_to_host(&ratio_[i]);
    return ratio_;
  }

 private:
  void step_host() {
    // Pass 1: per-chunk sums of w^2 and u^2 (double), combined per parameter in chunk order.
    this->for_each_chunk([&](const typename base::chunk& ch) {
      if (!adapted(ch.param)) return;
      const parameter<cpu>& p = *params_[ch.param].p;
      const float wd = weight_decay_of(ch.param);
      const float* w = p.value.data();
      const float* g = p.grad.data();
      double sw = 0, su = 0;
#pragma omp simd reduction(+ : sw, su)
      for (int64_t j = ch.begin; j < ch.end; ++j) {
        const float u = g[j] + wd * w[j];
        sw += double(w[j]) * w[j];
        su += double(u) * u;
      }
      partial_[size_t(&ch - chunks_.data())] = {sw, su};
    });
    std::fill(ratio_.begin(), ratio_.end(), 1.0f);
    std::vector<std::pair<double, double>>& norms = norms_;
    std::fill(norms.begin(), norms.end(), std::pair{0.0, 0.0});
    for (size_t c = 0; c < chunks_.size(); ++c) {
      norms[chunks_[c].param].first += partial_[c].first;
      norms[chunks_[c].param].second += partial_[c].second;
    }
    for (size_t i = 0; i < params_.size(); ++i) {
      if (!adapted(i)) continue;
      const double wn = std::sqrt(norms[i].first), un = std::sqrt(norms[i].second);
      if (wn > 0 && un > 0) ratio_[i] = float(double(opt_.eta) * wn / un);
    }
    // Pass 2: the momentum update.
    const float mu = opt_.momentum;
    const bool nesterov = opt_.nesterov;
    this->for_each_chunk([&](const typename base::chunk& ch) {
      parameter<cpu>& p = *params_[ch.param].p;
      const float wd = adapted(ch.param) ? weight_decay_of(ch.param) : 0.0f;
      const float scaled_lr = lr_of(ch.param) * ratio_[ch.param];
      float* __restrict w = p.value.data();
      const float* __restrict g = p.grad.data();
      float* __restrict b = state(momentum_slot_, ch.param).data();
      for (int64_t j = ch.begin; j < ch.end; ++j) {
        const float su = scaled_lr * (g[j] + wd * w[j]);
        const float bj = mu * b[j] + su;
        b[j] = bj;
        w[j] -= nesterov ? mu * bj + su : bj;
      }
    });
  }

#if defined(__CUDACC__)
  // Norms, trust ratio and update on the device (backend/cuda/optim.cuh), same formula.
  void step_device() {
    this->for_each_param([&](size_t i) {
      parameter<B>& p = *params_[i].p;
      ops::lars_update(p.value, p.grad, state(momentum_slot_, i), lr_of(i), opt_.momentum, weight_decay_of(i), opt_.eta,
                       opt_.nesterov, adapted(i), &ratio_device_[i]);
    });
  }
#endif

  lars_options opt_;
  size_t momentum_slot_ = 0;
  std::vector<std::pair<double, double>> partial_;  // per chunk: (sum w^2, sum u^2)
  std::vector<std::pair<double, double>> norms_;    // per parameter
  mutable std::vector<float> ratio_;
  std::vector<tensor<B>> ratio_device_;  // GPU only: (1) per parameter
};

}  // namespace ssl
