#pragma once
// Spatial pooling on the CPU, parallel over (sample, channel) planes.
//   x: (N, C, H, W) -> y: (N, C, HO, WO), HO = (H + 2 pad - K) / stride + 1 (floor, as PyTorch ceil_mode=False)
//   max_pool2d: y = max over the window (padding counts as -inf); backward routes dy to the argmax.
//   avg_pool2d: y = sum over the window / K^2 (padding counts as zeros, PyTorch count_include_pad=True).
//   global_avg_pool: (N, C, H, W) -> (N, C), y = mean over H*W.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "../../core/parallel.hpp"
#include "../../tensor/tensor.hpp"

namespace ssl::ops {

/// Storage of max pooling's saved argmax (flat input positions, int32) on backend B: a host
/// vector here; the CUDA backend specialises it with a device array (backend/cuda/pooling.cuh).
template <class B>
struct max_pool_argmax {
  using type = std::vector<int32_t>;
};

/// Window geometry of a square pooling: kernel, stride, padding.
struct pool2d_geometry {
  int64_t batch = 0, channels = 0, height = 0, width = 0;
  int64_t kernel = 1, stride = 1, padding = 0;
  int64_t out_h = 0, out_w = 0;
  int64_t planes() const { return batch * channels; }
};

inline pool2d_geometry pool2d_geometry_of(const shape& x, int64_t kernel, int64_t stride, int64_t padding,
                                          const char* what) {
  check<shape_error>(x.rank() == 4, what, ": expected input (N, C, H, W), got shape ", x);
  check<value_error>(kernel >= 1 && stride >= 1 && padding >= 0 && 2 * padding <= kernel, what,
                     ": expected kernel >= 1, stride >= 1, 0 <= padding <= kernel / 2, got kernel ", kernel,
                     ", stride ", stride, ", padding ", padding);
  pool2d_geometry g;
  g.batch = x[0];
  g.channels = x[1];
  g.height = x[2];
  g.width = x[3];
  g.kernel = kernel;
  g.stride = stride;
  g.padding = padding;
  check<shape_error>(g.height + 2 * padding >= kernel && g.width + 2 * padding >= kernel, what, ": input of spatial size ",
                     g.height, "x", g.width, " with padding ", padding, " is smaller than the kernel ", kernel);
  g.out_h = (g.height + 2 * padding - kernel) / stride + 1;
  g.out_w = (g.width + 2 * padding - kernel) / stride + 1;
  return g;
}

/// Max pooling. Writes y and, per output element, the flat index of its argmax within its input plane.
inline void max_pool2d_forward(const tensor<cpu>& x, int64_t kernel, int64_t stride, int64_t padding, tensor<cpu>& y,
                               std::vector<int32_t>* argmax) {
  const pool2d_geometry g = pool2d_geometry_of(x.shape(), kernel, stride, padding, "max_pool2d");
  const shape ys{g.batch, g.channels, g.out_h, g.out_w};
  if (!(y.shape() == ys)) y = tensor<cpu>(ys);
  if (argmax) argmax->resize(size_t(ys.numel()));
  const int64_t HW = g.height * g.width, P = g.out_h * g.out_w;
  parallel_for(0, g.planes(), [&](int64_t plane) {
    const float* xp = x.data() + plane * HW;
    float* yp = y.data() + plane * P;
    for (int64_t oh = 0; oh < g.out_h; ++oh) {
      const int64_t h0 = std::max<int64_t>(oh * g.stride - g.padding, 0);
      const int64_t h1 = std::min<int64_t>(oh * g.stride - g.padding + g.kernel, g.height);
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        const int64_t w0 = std::max<int64_t>(ow * g.stride - g.padding, 0);
        const int64_t w1 = std::min<int64_t>(ow * g.stride - g.padding + g.kernel, g.width);
        float best = -std::numeric_limits<float>::infinity();
        int64_t at = h0 * g.width + w0;
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) {
            const float v = xp[h * g.width + w];
            if (v > best || v != v) {  // NaN propagates, as in PyTorch
              best = v;
              at = h * g.width + w;
            }
          }
        yp[oh * g.out_w + ow] = best;
        if (argmax) (*argmax)[size_t(plane * P + oh * g.out_w + ow)] = int32_t(at);
      }
    }
  }, 4);
}

/// dx (x_shape) = scatter of dy to the saved argmax positions.
inline void max_pool2d_backward(const shape& x_shape, const std::vector<int32_t>& argmax, const tensor<cpu>& dy,
                                tensor<cpu>& dx) {
  check<shape_error>(x_shape.rank() == 4 && dy.rank() == 4 && dy.dim(0) == x_shape[0] && dy.dim(1) == x_shape[1] &&
                         int64_t(argmax.size()) == dy.numel(),
                     "max_pool2d backward: dy of shape ", dy.shape(), " does not fit input ", x_shape, " and ",
                     argmax.size(), " saved positions");
  if (!(dx.shape() == x_shape)) dx = tensor<cpu>(x_shape);
  const int64_t HW = x_shape[2] * x_shape[3], P = dy.dim(2) * dy.dim(3);
  parallel_for(0, x_shape[0] * x_shape[1], [&](int64_t plane) {
    float* dp = dx.data() + plane * HW;
    std::fill_n(dp, HW, 0.0f);
    const float* g = dy.data() + plane * P;
    const int32_t* a = argmax.data() + plane * P;
    for (int64_t i = 0; i < P; ++i) dp[a[i]] += g[i];
  }, 4);
}

/// Average pooling (zero padding included in the divisor kernel^2).
inline void avg_pool2d_forward(const tensor<cpu>& x, int64_t kernel, int64_t stride, int64_t padding, tensor<cpu>& y) {
  const pool2d_geometry g = pool2d_geometry_of(x.shape(), kernel, stride, padding, "avg_pool2d");
  const shape ys{g.batch, g.channels, g.out_h, g.out_w};
  if (!(y.shape() == ys)) y = tensor<cpu>(ys);
  const int64_t HW = g.height * g.width, P = g.out_h * g.out_w;
  const float inv = 1.0f / float(g.kernel * g.kernel);
  parallel_for(0, g.planes(), [&](int64_t plane) {
    const float* xp = x.data() + plane * HW;
    float* yp = y.data() + plane * P;
    for (int64_t oh = 0; oh < g.out_h; ++oh) {
      const int64_t h0 = std::max<int64_t>(oh * g.stride - g.padding, 0);
      const int64_t h1 = std::min<int64_t>(oh * g.stride - g.padding + g.kernel, g.height);
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        const int64_t w0 = std::max<int64_t>(ow * g.stride - g.padding, 0);
        const int64_t w1 = std::min<int64_t>(ow * g.stride - g.padding + g.kernel, g.width);
        float s = 0;
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) s += xp[h * g.width + w];
        yp[oh * g.out_w + ow] = s * inv;
      }
    }
  }, 4);
}

inline void avg_pool2d_backward(const shape& x_shape, int64_t kernel, int64_t stride, int64_t padding,
                                const tensor<cpu>& dy, tensor<cpu>& dx) {
  const pool2d_geometry g = pool2d_geometry_of(x_shape, kernel, stride, padding, "avg_pool2d backward");
  expect_shape(dy, shape{g.batch, g.channels, g.out_h, g.out_w}, "avg_pool2d backward dy");
  if (!(dx.shape() == x_shape)) dx = tensor<cpu>(x_shape);
  const int64_t HW = g.height * g.width, P = g.out_h * g.out_w;
  const float inv = 1.0f / float(g.kernel * g.kernel);
  parallel_for(0, g.planes(), [&](int64_t plane) {
    float* dp = dx.data() + plane * HW;
    std::fill_n(dp, HW, 0.0f);
    const float* gp = dy.data() + plane * P;
    for (int64_t oh = 0; oh < g.out_h; ++oh) {
      const int64_t h0 = std::max<int64_t>(oh * g.stride - g.padding, 0);
      const int64_t h1 = std::min<int64_t>(oh * g.stride - g.padding + g.kernel, g.height);
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        const int64_t w0 = std::max<int64_t>(ow * g.stride - g.padding, 0);
        const int64_t w1 = std::min<int64_t>(ow * g.stride - g.padding + g.kernel, g.width);
        const float v = gp[oh * g.out_w + ow] * inv;
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) dp[h * g.width + w] += v;
      }
    }
  }, 4);
}

/// (N, C, H, W) -> (N, C): mean over each plane.
inline void global_avg_pool_forward(const tensor<cpu>& x, tensor<cpu>& y) {
  check<shape_error>(x.rank() == 4, "global_avg_pool: expected input (N, C, H, W), got shape ", x.shape());
  const int64_t N = x.dim(0), C = x.dim(1), HW = x.dim(2) * x.dim(3);
  check<shape_error>(HW > 0, "global_avg_pool: expected a non-empty spatial size, got shape ", x.shape());
  const shape ys{N, C};
  if (!(y.shape() == ys)) y = tensor<cpu>(ys);
  const float inv = 1.0f / float(HW);
  parallel_for(0, N * C, [&](int64_t plane) {
    const float* p = x.data() + plane * HW;
    float s = 0;
    for (int64_t i = 0; i < HW; ++i) s += p[i];
    y[plane] = s * inv;
  }, 64);
}

/// dx[n, c, h, w] = dy[n, c] / (H * W).
inline void global_avg_pool_backward(const shape& x_shape, const tensor<cpu>& dy, tensor<cpu>& dx) {
  check<shape_error>(x_shape.rank() == 4, "global_avg_pool backward: expected input (N, C, H, W), got shape ", x_shape);
  expect_shape(dy, shape{x_shape[0], x_shape[1]}, "global_avg_pool backward dy");
  if (!(dx.shape() == x_shape)) dx = tensor<cpu>(x_shape);
  const int64_t HW = x_shape[2] * x_shape[3];
  const float inv = 1.0f / float(HW);
  parallel_for(0, x_shape[0] * x_shape[1], [&](int64_t plane) {
    std::fill_n(dx.data() + plane * HW, HW, dy[plane] * inv);
  }, 64);
}

}  // namespace ssl::ops
