#pragma once
// Kernel of the device dropout mask (see ../dropout.cuh) and the Philox draw it evaluates.
// The draw is __host__ __device__ so that a test without a GPU can check it against the CPU.
#include <cstdint>

#include "common.cuh"

namespace ssl::gpu::kernels {

// Philox-4x32-10 block: MUST match ssl::philox4x32 in core/rng.hpp bit for bit
// (same multipliers, Weyl constants, round structure and output order). Duplicated here
// because the CPU function works on std::array and is not a device function.
struct philox_words {
  uint32_t w[4];
};
__host__ __device__ inline philox_words philox4x32_device(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                                                          uint32_t k0, uint32_t k1) {
  constexpr uint32_t m0 = 0xD2511F53u, m1 = 0xCD9E8D57u;
  constexpr uint32_t w0 = 0x9E3779B9u, w1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = uint64_t(m0) * c0;
    const uint64_t p1 = uint64_t(m1) * c2;
    const uint32_t n0 = uint32_t(p1 >> 32) ^ c1 ^ k0, n1 = uint32_t(p1);
    const uint32_t n2 = uint32_t(p0 >> 32) ^ c3 ^ k1, n3 = uint32_t(p0);
    c0 = n0;
    c1 = n1;
    c2 = n2;
    c3 = n3;
    k0 += w0;
    k1 += w1;
  }
  return philox_words{{c0, c1, c2, c3}};
}

// The 4 draws of Philox counter c of a stream with 64-bit key `key`, as ssl::rng::next_u32 makes
// them after set_counter(c): counter words (lo, hi, 0, 0), key words (lo, hi), draws in order w[0..3].
__host__ __device__ inline philox_words philox_counter_draws(uint64_t key, uint64_t c) {
  return philox4x32_device(uint32_t(c), uint32_t(c >> 32), 0u, 0u, uint32_t(key), uint32_t(key >> 32));
}

// ssl::rng::uniform's conversion: the top 24 bits, times 2^-24, exact in float, in [0, 1).
__host__ __device__ inline float uniform_from_bits(uint32_t bits) { return float(bits >> 8) * (1.0f / 16777216.0f); }

// Mask value of one draw, as ops::dropout_mask (backend/cpu/dropout.hpp): kept when u >= p.
__host__ __device__ inline float dropout_value(uint32_t bits, float p, float keep) {
  return uniform_from_bits(bits) >= p ? keep : 0.0f;
}

// mask[i] (n elements) = dropout_value(draw i % 4 of counter i / 4): one thread per counter
// (4 elements, one Philox block each), grid-stride.
SSL_KERNEL void dropout_mask(uint64_t key, float p, float keep, float* __restrict__ mask, int64_t n) {
  const int64_t counters = (n + 3) / 4;
  SSL_GRID_STRIDE(c, counters) {
    const philox_words r = philox_counter_draws(key, uint64_t(c));
    const int64_t base = c * 4;
    for (int k = 0; k < 4 && base + k < n; ++k) mask[base + k] = dropout_value(r.w[k], p, keep);
  }
}

}  // namespace ssl::gpu::kernels
