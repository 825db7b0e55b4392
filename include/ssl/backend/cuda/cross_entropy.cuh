#pragma once
// Cross-entropy on the device, same math and checks as ssl::cross_entropy (losses/cross_entropy.hpp):
// mean over rows, optional label smoothing eps and class weights w,
//   L = [ (1 - eps) sum_i w_yi (-log p_i,yi) + eps/C sum_i sum_c w_c (-log p_ic) ] / sum_i w_yi.
// Labels (and weights) come from the host: they are checked there, then uploaded.
// The loss stays on the device (one element). ssl::cross_entropy's operator() on a device tensor
// lands here through device_cross_entropy (end of this file).
#include <cmath>
#include <span>
#include <vector>

#include "../../losses/cross_entropy.hpp"
#include "buffer.cuh"
#include "kernels/cross_entropy.cuh"
#include "layer_norm.cuh"  // detail::row_threads

namespace ssl::ops {

struct cross_entropy_device_result {
  tensor<cuda> value;        // (1)
  tensor<cuda> grad_logits;  // (N, C)
};

/// logits (N, C) on the device, labels: N class indices in [0, C).
inline cross_entropy_device_result cross_entropy(const tensor<cuda>& logits, std::span<const int64_t> labels,
                                                 float label_smoothing = 0.0f,
                                                 const std::vector<float>& class_weights = {}) {
  check<value_error>(label_smoothing >= 0.0f && label_smoothing <= 1.0f,
                     "cross_entropy label_smoothing: expected a value in [0, 1], got ", label_smoothing);
  check<shape_error>(logits.rank() == 2 && logits.dim(0) > 0 && logits.dim(1) > 0,
                     "cross_entropy logits: expected non-empty (N, C), got ", logits.shape());
  const int64_t N = logits.dim(0), C = logits.dim(1);
  check<shape_error>(int64_t(labels.size()) == N, "cross_entropy labels: expected ", N, " labels, got ", labels.size());
  check<shape_error>(class_weights.empty() || int64_t(class_weights.size()) == C, "cross_entropy: expected ", C,
                     " class weights, got ", class_weights.size());
  auto w = [&](int64_t c) { return class_weights.empty() ? 1.0f : class_weights[size_t(c)]; };
  double w_total = 0, w_norm = 0;
  for (int64_t c = 0; c < C; ++c) {
    check<value_error>(w(c) >= 0.0f && std::isfinite(w(c)), "cross_entropy class weight: expected finite and >= 0, got ",
                       w(c), " for class ", c);
    w_total += w(c);
  }
  for (int64_t i = 0; i < N; ++i) {
    check<value_error>(labels[size_t(i)] >= 0 && labels[size_t(i)] < C, "cross_entropy labels: expected a class in [0, ",
                       C, "), got ", labels[size_t(i)], " at ", i);
    w_norm += w(labels[size_t(i)]);
  }
  check<value_error>(w_norm > 0, "cross_entropy: the labels' class weights sum to 0");

  gpu::array<int64_t> dlabels(N);
  SSL_CUDA_CHECK(cudaMemcpyAsync(dlabels.data(), labels.data(), dlabels.bytes(), cudaMemcpyHostToDevice, gpu::stream()));
  gpu::array<float> dweights(int64_t(class_weights.size()));
  if (!class_weights.empty())
    SSL_CUDA_CHECK(cudaMemcpyAsync(dweights.data(), class_weights.data(), dweights.bytes(), cudaMemcpyHostToDevice,
                                   gpu::stream()));
  cross_entropy_device_result r{tensor<cuda>(shape{1}), tensor<cuda>(logits.shape())};
  float* row_loss = gpu::context::get().workspace(0, N);
  gpu::kernels::cross_entropy_rows<<<unsigned(N), detail::row_threads(C), 0, gpu::stream()>>>(
      logits.data(), dlabels.data(), class_weights.empty() ? nullptr : dweights.data(), C, label_smoothing,
      float(w_total), float(1.0 / w_norm), r.grad_logits.data(), row_loss);
  SSL_CUDA_CHECK_LAUNCH("cross_entropy_rows");
  gpu::kernels::scaled_sum<<<1, gpu::kernels::block_reduce_max, 0, gpu::stream()>>>(row_loss, N, float(1.0 / w_norm),
                                                                                    r.value.data());
  SSL_CUDA_CHECK_LAUNCH("scaled_sum");
  return r;
}

inline cross_entropy_device_result cross_entropy(const tensor<cuda>& logits, const std::vector<int64_t>& labels,
                                                 float label_smoothing = 0.0f,
                                                 const std::vector<float>& class_weights = {}) {
  return cross_entropy(logits, std::span<const int64_t>(labels), label_smoothing, class_weights);
}

}  // namespace ssl::ops

namespace ssl {

/// ssl::cross_entropy on device logits (found by cross_entropy::operator() for tensor<cuda>).
inline ops::cross_entropy_device_result device_cross_entropy(const cross_entropy& loss, const tensor<cuda>& logits,
                                                             std::span<const int64_t> labels) {
  return ops::cross_entropy(logits, labels, loss.label_smoothing(), loss.class_weights());
}

}  // namespace ssl
