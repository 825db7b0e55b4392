#pragma once
// Frozen-feature extraction for evaluation.
//
//   features = extract_features(encoder, images, norm)   // (N, F), encoder.infer (eval mode)
//   recalibrate_batch_norm(encoder, images, norm)        // BN running stats as a cumulative
//                                                          // average over one pass (random-init baselines)
// images: (N, C, H, W) in [0, 1]; `norm` is applied per channel first: (x - mean_c) / std_c.
#include <optional>
#include <vector>

#include "../core/parallel.hpp"
#include "../nn/batch_norm.hpp"
#include "../nn/module.hpp"

namespace ssl::eval {

/// Per-channel input normalisation (x - mean) / std.
struct input_normalization {
  std::vector<float> mean{0.0f};
  std::vector<float> std{1.0f};
};
/// Fashion-MNIST train mean / std (shared/WORKLOADS.md).
inline input_normalization fashion_mnist_normalization() { return {{0.2860f}, {0.3530f}}; }

/// Rows [begin, end) of images, normalised: (end - begin, C, H, W).
inline tensor<cpu> normalized_slice(const tensor<cpu>& images, int64_t begin, int64_t end,
                                    const input_normalization& norm) {
  expect_rank(images, 4, "normalized_slice images");
  const int64_t C = images.dim(1), HW = images.dim(2) * images.dim(3);
  check<shape_error>(int64_t(norm.mean.size()) == C && int64_t(norm.std.size()) == C, "input normalisation: ",
                     norm.mean.size(), " means / ", norm.std.size(), " stds for images with ", C, " channels");
  tensor<cpu> x(shape{end - begin, C, images.dim(2), images.dim(3)});
  parallel_for(0, (end - begin) * C, [&](int64_t nc) {
    const int64_t c = nc % C;
    const float m = norm.mean[size_t(c)], inv = 1.0f / norm.std[size_t(c)];
    const float* src = images.data() + (begin * C + nc) * HW;
    float* dst = x.data() + nc * HW;
    for (int64_t i = 0; i < HW; ++i) dst[i] = (src[i] - m) * inv;
  });
  return x;
}

namespace detail {
/// encoder.infer over rows [0, N) in batches, each batch made by `slice(begin, end)`: (N, F).
template <class E, class Slice>
tensor<cpu> infer_in_batches(const E& encoder, int64_t N, int64_t batch, Slice&& slice) {
  check<value_error>(batch >= 1, "extract_features: batch must be >= 1, got ", batch);
  tensor<cpu> out;
  for (int64_t b = 0; b < N; b += batch) {
    const int64_t e = std::min(N, b + batch);
    tensor<cpu> f = encoder.infer(slice(b, e));
    if (b == 0) out = tensor<cpu>(shape{N, f.numel() / f.dim(0)});
    std::copy_n(f.data(), f.numel(), out.data() + b * out.dim(1));
  }
  return out;
}
}  // namespace detail

/// encoder.infer over all images, normalised, in batches: (N, feature_dim).
template <class E>
tensor<cpu> extract_features(const E& encoder, const tensor<cpu>& images, const input_normalization& norm,
                             int64_t batch = 1000) {
  return detail::infer_in_batches(encoder, images.dim(0), batch,
                                  [&](int64_t b, int64_t e) { return normalized_slice(images, b, e, norm); });
}

/// encoder.infer over inputs that are ready as they are (already normalised, e.g. augmented
/// views): (N, ...) -> (N, F), in batches.
template <class E>
tensor<cpu> features_of(const E& encoder, const tensor<cpu>& inputs, int64_t batch = 1000) {
  check<shape_error>(inputs.rank() >= 2 && inputs.dim(0) >= 1, "features_of: expected inputs (N, ...) with N >= 1, got ",
                     inputs.shape());
  const int64_t row = inputs.numel() / inputs.dim(0);
  return detail::infer_in_batches(encoder, inputs.dim(0), batch, [&](int64_t b, int64_t e) {
    shape s = inputs.shape();
    s[0] = e - b;
    tensor<cpu> x(s);
    std::copy_n(inputs.data() + b * row, (e - b) * row, x.data());
    return x;
  });
}

/// Resets every BN's running statistics and re-estimates them as the cumulative average over one
/// train-mode pass (no gradients kept), then restores the BN momentum. For random-init encoders
/// (WORKLOADS.md Q2) and after training with a different batch composition.
template <HasBatchNorms E>
void recalibrate_batch_norm(E& encoder, const tensor<cpu>& images, const input_normalization& norm,
                            int64_t batch = 1000) {
  std::vector<std::optional<float>> momenta;
  encoder.for_each_batch_norm([&](auto& bn) {
    momenta.push_back(bn.options().momentum);
    bn.reset_running_stats();
    bn.set_momentum(std::nullopt);
  });
  const int64_t N = images.dim(0);
  for (int64_t b = 0; b < N; b += batch) (void)encoder.forward(normalized_slice(images, b, std::min(N, b + batch), norm));
  size_t i = 0;
  encoder.for_each_batch_norm([&](auto& bn) { bn.set_momentum(momenta[i++]); });
}

}  // namespace ssl::eval
