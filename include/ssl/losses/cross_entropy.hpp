#pragma once
// Cross-entropy with optional label smoothing and class weights, as torch.nn.CrossEntropyLoss
// (mean reduction). logits: (N, C), labels: N class indices in [0, C).
//   log p = log_softmax(logits),  w: class weights (all 1 by default), eps: smoothing,
//   L = [ (1 - eps) sum_i w_yi (-log p_i,yi) + eps/C sum_i sum_c w_c (-log p_ic) ] / sum_i w_yi.
// Gradient: d logits_i = [ (1 - eps) w_yi (p_i - e_yi) + eps/C (W p_i - w) ] / sum_i w_yi,
//   W = sum_c w_c. (Used by the pretext tasks, the linear probe and colorization's rebalancing.)
// On a device backend (under nvcc) the same loss runs there (backend/cuda/cross_entropy.cuh); the
// labels stay a host list, checked on the host and uploaded by the op.
#include <concepts>
#include <span>
#include <vector>

#include "detail/row_math.hpp"

namespace ssl {

struct cross_entropy_result {
  float value = 0;
  tensor<cpu> grad_logits;  // (N, C)
};

class cross_entropy {
 public:
  explicit cross_entropy(float label_smoothing = 0.0f, std::vector<float> class_weights = {})
      : smoothing_(label_smoothing), weights_(std::move(class_weights)) {
    check<value_error>(label_smoothing >= 0.0f && label_smoothing <= 1.0f,
                       "cross_entropy label_smoothing: expected a value in [0, 1], got ", label_smoothing);
    for (size_t c = 0; c < weights_.size(); ++c)
      check<value_error>(weights_[c] >= 0.0f && std::isfinite(weights_[c]),
                         "cross_entropy class weight: expected finite and >= 0, got ", weights_[c], " for class ", c);
  }
  float label_smoothing() const { return smoothing_; }
  const std::vector<float>& class_weights() const { return weights_; }

  // logits: (N, C), labels: N indices
  cross_entropy_result operator()(const tensor<cpu>& logits, std::span<const int64_t> labels) const {
    check<shape_error>(logits.rank() == 2 && logits.dim(0) > 0 && logits.dim(1) > 0,
                       "cross_entropy logits: expected non-empty (N, C), got ", logits.shape());
    const int64_t N = logits.dim(0), C = logits.dim(1);
    check<shape_error>(int64_t(labels.size()) == N, "cross_entropy labels: expected ", N, " labels, got ", labels.size());
    check<shape_error>(weights_.empty() || int64_t(weights_.size()) == C, "cross_entropy: expected ", C,
                       " class weights, got ", weights_.size());
    auto w = [&](int64_t c) { return weights_.empty() ? 1.0f : weights_[size_t(c)]; };
    double w_total = 0, w_norm = 0;
    for (int64_t c = 0; c < C; ++c) w_total += w(c);
    for (int64_t i = 0; i < N; ++i) {
      check<value_error>(labels[size_t(i)] >= 0 && labels[size_t(i)] < C, "cross_entropy labels: expected a class in [0, ",
                         C, "), got ", labels[size_t(i)], " at ", i);
      w_norm += w(labels[size_t(i)]);
    }
    check<value_error>(w_norm > 0, "cross_entropy: the labels' class weights sum to 0");

    cross_entropy_result res;
    res.grad_logits = tensor<cpu>(logits.shape());
    std::vector<double> row_loss(static_cast<size_t>(N));
    const double eps = smoothing_;
    const float inv_norm = float(1.0 / w_norm);
    parallel_for(0, N, [&](int64_t i) {
      const float* x = logits.data() + i * C;
      float* d = res.grad_logits.data() + i * C;
      std::copy_n(x, C, d);
      const double lse = losses_detail::softmax_inplace(d, C);  // d = p_i
      const int64_t y = labels[size_t(i)];
      const double wy = w(y);
      double smooth = 0;
      if (eps > 0)
        for (int64_t c = 0; c < C; ++c) smooth += double(w(c)) * (lse - double(x[c]));
      row_loss[size_t(i)] = (1 - eps) * wy * (lse - double(x[y])) + eps / double(C) * smooth;
      const float a = float((1 - eps) * wy), b = float(eps / double(C));
      for (int64_t c = 0; c < C; ++c) d[c] = (a * d[c] + b * (float(w_total) * d[c] - w(c))) * inv_norm;
      d[y] -= a * inv_norm;
    }, 16);
    res.value = float(losses_detail::ordered_sum(row_loss) / w_norm);
    return res;
  }
  cross_entropy_result operator()(const tensor<cpu>& logits, const std::vector<int64_t>& labels) const {
    return (*this)(logits, std::span<const int64_t>(labels));
  }
  // logits: (N, C) on a device backend, labels: N host indices. The result's `value` is a (1)
  // device tensor (the step never waits for it), `grad_logits` a device tensor (N, C).
  template <class B>
    requires(!std::same_as<B, cpu>)
  auto operator()(const tensor<B>& logits, std::span<const int64_t> labels) const {
    return device_cross_entropy(*this, logits, labels);
  }
  template <class B>
    requires(!std::same_as<B, cpu>)
  auto operator()(const tensor<B>& logits, const std::vector<int64_t>& labels) const {
    return device_cross_entropy(*this, logits, std::span<const int64_t>(labels));
  }

 private:
  float smoothing_ = 0.0f;
  std::vector<float> weights_;
};

}  // namespace ssl

#if defined(__CUDACC__)
#include "../backend/cuda/cross_entropy.cuh"
#endif
