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

namespace ssl {

struct lars_options {
  float lr = 0.3f;
  float momentum = 0.9f;
  float weight_decay = 1e-6f;
  float eta = 1e-3f;  // trust coefficient
  bool nesterov = false;
  bool exclude_bias_and_norm = true;
};

class lars : public optimizer_base {
 public:
  explicit lars(param_list<cpu> params, const lars_options& o = {}, std::vector<param_group> groups = {})
      : optimizer_base("lars", std::move(params), o.lr, o.weight_decay, std::move(groups)), opt_(o) {
    check(o.momentum >= 0.0f && o.momentum < 1.0f, "lars: momentum must be in [0, 1), got ", o.momentum);
    check(o.eta > 0.0f, "lars: trust coefficient eta must be > 0, got ", o.eta);
    momentum_slot_ = add_slot("momentum_buffer");
    partial_.resize(chunks_.size());
    ratio_.resize(params_.size());
    norms_.resize(params_.size());
  }

  const lars_options& options() const { return opt_; }
  /// Whether parameter i gets weight decay and layer adaptation.
  bool adapted(size_t i) const { return !(opt_.exclude_bias_and_norm && params_[i].p->is_bias_or_norm()); }

  void step() {
    ++step_;
    // Pass 1: per-chunk sums of w^2 and u^2 (double), combined per parameter in chunk order.
    for_each_chunk([&](const chunk& ch) {
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
    for_each_chunk([&](const chunk& ch) {
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

  /// Trust ratio of each parameter at the last step (1 for excluded ones).
  const std::vector<float>& trust_ratios() const { return ratio_; }

 private:
  lars_options opt_;
  size_t momentum_slot_ = 0;
  std::vector<std::pair<double, double>> partial_;  // per chunk: (sum w^2, sum u^2)
  std::vector<std::pair<double, double>> norms_;    // per parameter
  std::vector<float> ratio_;
};

}  // namespace ssl
