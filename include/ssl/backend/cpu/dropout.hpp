#pragma once
// Inverted dropout on the CPU: y = x * m, m_i = keep_i / (1 - p), keep_i ~ Bernoulli(1 - p).
// The mask is a pure function of the rng stream: element i uses the i-th 32-bit draw of
// `stream` (Philox counter i / 4), so it does not depend on the thread count.
#include <cstdint>

#include "../../core/rng.hpp"
#include "elementwise.hpp"
#include "../../tensor/tensor.hpp"

namespace ssl::ops {

/// Mask of shape s: 0 (dropped, probability p) or 1/(1-p) (kept). p in [0, 1].
inline tensor<cpu> dropout_mask(const shape& s, float p, const rng& stream) {
  check<value_error>(p >= 0.0f && p <= 1.0f, "dropout_mask: expected p in [0, 1], got ", p);
  tensor<cpu> mask(s);
  float* m = mask.data();
  const float keep = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
  // Blocks are a multiple of 4 elements, so each starts on a fresh Philox counter.
  detail::for_each_block(mask.numel(), [&](int64_t b, int64_t e) {
    rng g = stream;
    g.set_counter(uint64_t(b / 4));
    for (int64_t i = b; i < e; ++i) m[i] = g.uniform() >= p ? keep : 0.0f;
  });
  return mask;
}

/// Elementwise product a * b (same shapes): dropout's forward (x * mask) and backward (dy * mask).
inline tensor<cpu> multiply(const tensor<cpu>& a, const tensor<cpu>& b) {
  expect_shape(b, a.shape(), "multiply");
  tensor<cpu> y(a.shape());
  const float *ad = a.data(), *bd = b.data();
  float* yd = y.data();
  detail::for_each_block(a.numel(), [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) yd[i] = ad[i] * bd[i];
  });
  return y;
}

}  // namespace ssl::ops
