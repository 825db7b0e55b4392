#pragma once
// Pooling kernels on (planes = N*C, H, W). Forward: one thread per output. Backward gathers:
// one thread per input pixel sums the outputs whose window holds it (no atomics, deterministic).
// Windows are clipped to the image (padding never wins a max; averages divide by kernel^2).
#include "common.cuh"

namespace ssl::gpu::kernels {

struct pool_dims {
  int64_t planes, H, W, k, stride, pad, OH, OW;
};

SSL_KERNEL void max_pool_forward(const float* __restrict__ x, pool_dims d, float* __restrict__ y,
                                 int32_t* __restrict__ argmax) {
  SSL_GRID_STRIDE(i, d.planes * d.OH * d.OW) {
    const int64_t ow = i % d.OW, oh = (i / d.OW) % d.OH, plane = i / (d.OW * d.OH);
    const float* xp = x + plane * d.H * d.W;
    const int64_t h0 = max(oh * d.stride - d.pad, int64_t(0)), h1 = min(oh * d.stride - d.pad + d.k, d.H);
    const int64_t w0 = max(ow * d.stride - d.pad, int64_t(0)), w1 = min(ow * d.stride - d.pad + d.k, d.W);
    float best = -INFINITY;
    int64_t at = h0 * d.W + w0;
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t w = w0; w < w1; ++w) {
        const float v = xp[h * d.W + w];
        if (v > best || v != v) {
          best = v;
          at = h * d.W + w;
        }
      }
    y[i] = best;
    if (argmax) argmax[i] = int32_t(at);
  }
}

// Output rows/cols whose window [o*s - pad, o*s - pad + k) contains input coordinate v.
__device__ inline void windows_containing(int64_t v, int64_t k, int64_t s, int64_t pad, int64_t n_out, int64_t& lo,
                                          int64_t& hi) {
  const int64_t t = v + pad;  // o*s <= t < o*s + k
  lo = t - k + 1 <= 0 ? 0 : (t - k + 1 + s - 1) / s;
  hi = min(t / s + 1, n_out);
}

SSL_KERNEL void max_pool_backward(const int32_t* __restrict__ argmax, const float* __restrict__ dy, pool_dims d,
                                  float* __restrict__ dx) {
  SSL_GRID_STRIDE(i, d.planes * d.H * d.W) {
    const int64_t iw = i % d.W, ih = (i / d.W) % d.H, plane = i / (d.W * d.H);
    int64_t oh0, oh1, ow0, ow1;
    windows_containing(ih, d.k, d.stride, d.pad, d.OH, oh0, oh1);
    windows_containing(iw, d.k, d.stride, d.pad, d.OW, ow0, ow1);
    const int32_t me = int32_t(ih * d.W + iw);
    const int64_t base = plane * d.OH * d.OW;
    float s = 0.0f;
    for (int64_t oh = oh0; oh < oh1; ++oh)
      for (int64_t ow = ow0; ow < ow1; ++ow)
        if (argmax[base + oh * d.OW + ow] == me) s += dy[base + oh * d.OW + ow];
    dx[i] = s;
  }
}

SSL_KERNEL void avg_pool_forward(const float* __restrict__ x, pool_dims d, float* __restrict__ y) {
  const float inv = 1.0f / float(d.k * d.k);
  SSL_GRID_STRIDE(i, d.planes * d.OH * d.OW) {
    const int64_t ow = i % d.OW, oh = (i / d.OW) % d.OH, plane = i / (d.OW * d.OH);
    const float* xp = x + plane * d.H * d.W;
    const int64_t h0 = max(oh * d.stride - d.pad, int64_t(0)), h1 = min(oh * d.stride - d.pad + d.k, d.H);
    const int64_t w0 = max(ow * d.stride - d.pad, int64_t(0)), w1 = min(ow * d.stride - d.pad + d.k, d.W);
    float s = 0.0f;
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t w = w0; w < w1; ++w) s += xp[h * d.W + w];
    y[i] = s * inv;
  }
}

SSL_KERNEL void avg_pool_backward(const float* __restrict__ dy, pool_dims d, float* __restrict__ dx) {
  const float inv = 1.0f / float(d.k * d.k);
  SSL_GRID_STRIDE(i, d.planes * d.H * d.W) {
    const int64_t iw = i % d.W, ih = (i / d.W) % d.H, plane = i / (d.W * d.H);
    int64_t oh0, oh1, ow0, ow1;
    windows_containing(ih, d.k, d.stride, d.pad, d.OH, oh0, oh1);
    windows_containing(iw, d.k, d.stride, d.pad, d.OW, ow0, ow1);
    const int64_t base = plane * d.OH * d.OW;
    float s = 0.0f;
    for (int64_t oh = oh0; oh < oh1; ++oh)
      for (int64_t ow = ow0; ow < ow1; ++ow) s += dy[base + oh * d.OW + ow];
    dx[i] = s * inv;
  }
}

// y[plane] = mean of the plane's HW values; one warp per plane.
SSL_KERNEL void global_avg_pool_forward(const float* __restrict__ x, int64_t planes, int64_t HW,
                                        float* __restrict__ y) {
  const int64_t plane = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  if (plane >= planes) return;  // whole warps exit together
  float s = 0.0f;
  for (int64_t j = lane; j < HW; j += 32) s += x[plane * HW + j];
  s = warp_sum(s);
  if (lane == 0) y[plane] = s / float(HW);
}

SSL_KERNEL void global_avg_pool_backward(const float* __restrict__ dy, int64_t planes, int64_t HW,
                                         float* __restrict__ dx) {
  const float inv = 1.0f / float(HW);
  SSL_GRID_STRIDE(i, planes * HW) dx[i] = dy[i / HW] * inv;
}

}  // namespace ssl::gpu::kernels
