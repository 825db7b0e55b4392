#pragma once
// Dropout mask on the device, BIT-IDENTICAL to ops::dropout_mask (backend/cpu/dropout.hpp):
//   mask_i = 1/(1-p) when uniform_i >= p, else 0;  uniform_i = the i-th 32-bit draw of `stream`
//   (Philox-4x32-10 counter i / 4, word i % 4; the stream's own running counter is not used),
//   converted as rng::uniform. p = 1 gives all zeros, p = 0 all ones.
// The mask is applied with ops::multiply on tensor<cuda> (tokens.cuh): y = x * mask, dx = dy * mask.
//
// Signatures (no overload can be confused with the CPU `dropout_mask(shape, p, rng)`):
//   tensor<cuda> dropout_mask(cuda, const shape& s, float p, const rng& stream)   a new mask
//   void dropout_mask(tensor<cuda>& mask, float p, const rng& stream)              into an existing tensor
#include <cmath>

#include "../../core/rng.hpp"
#include "../cpu/dropout.hpp"  // the CPU reference
#include "buffer.cuh"
#include "kernels/dropout.cuh"
#include "tokens.cuh"          // ops::multiply on tensor<cuda>

namespace ssl::ops {

namespace detail {
// Same check and message as the CPU op; runs before any device work.
inline void expect_dropout_p(float p) {
  check<value_error>(p >= 0.0f && p <= 1.0f, "dropout_mask: expected p in [0, 1], got ", p);
}
}  // namespace detail

/// mask (any shape, on the device) = the dropout mask of its shape for (p, stream).
inline void dropout_mask(tensor<cuda>& mask, float p, const rng& stream) {
  detail::expect_dropout_p(p);
  const int64_t n = mask.numel();
  if (n == 0) return;
  const float keep = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;  // computed on the host exactly as the CPU op
  gpu::kernels::dropout_mask<<<gpu::kernels::grid_for((n + 3) / 4), gpu::kernels::block_size, 0, gpu::stream()>>>(
      stream.key(), p, keep, mask.data(), n);
  SSL_CUDA_CHECK_LAUNCH("dropout_mask");
}

/// A new device mask of shape s: 0 (probability p) or 1/(1-p). p in [0, 1].
inline tensor<cuda> dropout_mask(cuda, const shape& s, float p, const rng& stream) {
  detail::expect_dropout_p(p);  // before the allocation
  tensor<cuda> mask(s);
  dropout_mask(mask, p, stream);
  return mask;
}

}  // namespace ssl::ops
