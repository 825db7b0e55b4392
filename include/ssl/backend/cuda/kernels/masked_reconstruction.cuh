#pragma once
// MAE's masked reconstruction loss rows (see ../masked_reconstruction.cuh): one warp per patch row.
#include "common.cuh"

namespace ssl::gpu::kernels {

/// The sum of v over the warp, in every lane.
__device__ inline float warp_sum_all(float v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

// Row r of pred, target (R, P) with mask m_r in {0, 1}; with norm_pix t' = (t - mean) / sqrt(var_unbiased + eps):
//   diff = pred - t',  grad_r = m_r g diff  (g = 2 / (P sum mask)),  row_err_r = m_r mean_p diff^2
// absolute (SimMIM's L1): grad_r = m_r g sign(diff)  (g = 1 / (P sum mask)),  row_err_r = m_r mean_p |diff|
SSL_KERNEL void masked_reconstruction_rows(const float* __restrict__ pred, const float* __restrict__ target,
                                           const float* __restrict__ mask, int64_t R, int64_t P, bool norm_pix,
                                           bool absolute, float eps, float g, float* __restrict__ grad,
                                           float* __restrict__ row_err) {
  const int lane = threadIdx.x & 31;
  const int64_t warps_per_block = blockDim.x >> 5;
  for (int64_t r = int64_t(blockIdx.x) * warps_per_block + (threadIdx.x >> 5); r < R;
       r += int64_t(gridDim.x) * warps_per_block) {
    const float* x = pred + r * P;
    const float* t = target + r * P;
    float* d = grad + r * P;
    if (mask[r] == 0.0f) {
      for (int64_t p = lane; p < P; p += 32) d[p] = 0.0f;
      if (lane == 0) row_err[r] = 0.0f;
      continue;
    }
    float mean = 0.0f, inv_std = 1.0f;
    if (norm_pix) {
      float s = 0.0f;
      for (int64_t p = lane; p < P; p += 32) s += t[p];
      mean = warp_sum_all(s) / float(P);
      float v = 0.0f;
      for (int64_t p = lane; p < P; p += 32) v += (t[p] - mean) * (t[p] - mean);
      inv_std = 1.0f / sqrtf(warp_sum_all(v) / float(P - 1) + eps);
    }
    float e = 0.0f;
    for (int64_t p = lane; p < P; p += 32) {
      const float diff = x[p] - (norm_pix ? (t[p] - mean) * inv_std : t[p]);
      if (absolute) {
        e += fabsf(diff);
        d[p] = g * float((diff > 0.0f) - (diff < 0.0f));
      } else {
        e += diff * diff;
        d[p] = g * diff;
      }
    }
    e = warp_sum_all(e);
    if (lane == 0) row_err[r] = e / float(P);
  }
}

}  // namespace ssl::gpu::kernels
