#pragma once
// 2-D convolution (cross-correlation, as PyTorch) on the CPU: im2col + ssl::ops::gemm,
// parallel over the batch.
//   x: (N, C, H, W), w: (O, C, KH, KW), b: (O) or none, y: (N, O, HO, WO)
//   HO = (H + 2 pad - KH) / stride + 1,  WO likewise.
//   y[n] (O, HO*WO) = w (O, C*KH*KW) · col(x[n]) (C*KH*KW, HO*WO) + b
// Backward:
//   dw += Σ_n dy[n] (O, P) · col(x[n])ᵀ (P, CKK);   db += Σ_{n,p} dy[n, o, p]
//   dx[n] = col2im(wᵀ (CKK, O) · dy[n] (O, P))
// A 1x1 kernel with stride 1 and no padding skips im2col (col(x[n]) is x[n] itself).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../../core/parallel.hpp"
#include "gemm.hpp"

namespace ssl::ops {

/// Geometry of one convolution, derived from the input and weight shapes.
struct conv2d_geometry {
  int64_t batch = 0, in_channels = 0, height = 0, width = 0;
  int64_t out_channels = 0, kernel_h = 0, kernel_w = 0;
  int64_t stride = 1, padding = 0;
  int64_t out_h = 0, out_w = 0;

  int64_t patch_size() const { return in_channels * kernel_h * kernel_w; }  // rows of col (C*KH*KW)
  int64_t out_pixels() const { return out_h * out_w; }                       // columns of col (P)
  bool is_pointwise() const { return kernel_h == 1 && kernel_w == 1 && stride == 1 && padding == 0; }
};

/// Checks x (N, C, H, W) against w (O, C, KH, KW) and returns the geometry.
inline conv2d_geometry conv2d_geometry_of(const shape& x, const shape& w, int64_t stride, int64_t padding,
                                          const char* what = "conv2d") {
  check<shape_error>(x.rank() == 4, what, ": expected input (N, C, H, W), got shape ", x);
  check<shape_error>(w.rank() == 4, what, ": expected weight (O, C, KH, KW), got shape ", w);
  check<value_error>(stride >= 1 && padding >= 0, what, ": expected stride >= 1 and padding >= 0, got stride ", stride,
                     ", padding ", padding);
  check<shape_error>(x[1] == w[1], what, ": expected input (N, ", w[1], ", H, W), got shape ", x);
  conv2d_geometry g;
  g.batch = x[0];
  g.in_channels = x[1];
  g.height = x[2];
  g.width = x[3];
  g.out_channels = w[0];
  g.kernel_h = w[2];
  g.kernel_w = w[3];
  g.stride = stride;
  g.padding = padding;
  check<shape_error>(g.height + 2 * padding >= g.kernel_h && g.width + 2 * padding >= g.kernel_w, what,
                     ": input of spatial size ", g.height, "x", g.width, " with padding ", padding,
                     " is smaller than the kernel ", g.kernel_h, "x", g.kernel_w);
  g.out_h = (g.height + 2 * padding - g.kernel_h) / stride + 1;
  g.out_w = (g.width + 2 * padding - g.kernel_w) / stride + 1;
  return g;
}

namespace detail {

/// Per-thread scratch memory that grows and is reused (no allocation in steady state).
inline float* conv_workspace(int slot, size_t n) {
  thread_local std::vector<float> ws[3];
  if (ws[slot].size() < n) ws[slot].resize(n);
  return ws[slot].data();
}

/// col (C*KH*KW, HO*WO) from one image x (C, H, W), row r at col + r * ldc; zeros where the
/// window hits padding. ldc > HO*WO places several images side by side (a group of the batch).
inline void im2col(const conv2d_geometry& g, const float* x, float* col, int64_t ldc) {
  const int64_t P = ldc;
  for (int64_t c = 0; c < g.in_channels; ++c) {
    const float* xc = x + c * g.height * g.width;
    for (int64_t ki = 0; ki < g.kernel_h; ++ki) {
      for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
        float* row = col + ((c * g.kernel_h + ki) * g.kernel_w + kj) * P;
        // valid output columns: 0 <= ow*s - pad + kj < W
        const int64_t off = kj - g.padding;
        const int64_t ow_lo = off >= 0 ? 0 : (-off + g.stride - 1) / g.stride;
        const int64_t ow_hi = std::min(g.out_w, off >= g.width ? 0 : (g.width - 1 - off) / g.stride + 1);
        for (int64_t oh = 0; oh < g.out_h; ++oh) {
          float* dst = row + oh * g.out_w;
          const int64_t ih = oh * g.stride - g.padding + ki;
          if (ih < 0 || ih >= g.height || ow_lo >= ow_hi) {
            std::fill_n(dst, g.out_w, 0.0f);
            continue;
          }
          const float* src = xc + ih * g.width + off;
          std::fill_n(dst, ow_lo, 0.0f);
          if (g.stride == 1) {
            std::memcpy(dst + ow_lo, src + ow_lo, size_t(ow_hi - ow_lo) * sizeof(float));
          } else {
            for (int64_t ow = ow_lo; ow < ow_hi; ++ow) dst[ow] = src[ow * g.stride];
          }
          std::fill(dst + ow_hi, dst + g.out_w, 0.0f);
        }
      }
    }
  }
}

/// dx (C, H, W) += col2im(dcol (C*KH*KW, HO*WO), rows ldc apart): the adjoint of im2col.
inline void col2im_add(const conv2d_geometry& g, const float* dcol, float* dx, int64_t ldc) {
  const int64_t P = ldc;
  for (int64_t c = 0; c < g.in_channels; ++c) {
    float* dxc = dx + c * g.height * g.width;
    for (int64_t ki = 0; ki < g.kernel_h; ++ki) {
      for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
        const float* row = dcol + ((c * g.kernel_h + ki) * g.kernel_w + kj) * P;
        const int64_t off = kj - g.padding;
        const int64_t ow_lo = off >= 0 ? 0 : (-off + g.stride - 1) / g.stride;
        const int64_t ow_hi = std::min(g.out_w, off >= g.width ? 0 : (g.width - 1 - off) / g.stride + 1);
        for (int64_t oh = 0; oh < g.out_h; ++oh) {
          const int64_t ih = oh * g.stride - g.padding + ki;
          if (ih < 0 || ih >= g.height) continue;
          const float* src = row + oh * g.out_w;
          float* dst = dxc + ih * g.width + off;
          if (g.stride == 1) {
            for (int64_t ow = ow_lo; ow < ow_hi; ++ow) dst[ow] += src[ow];
          } else {
            for (int64_t ow = ow_lo; ow < ow_hi; ++ow) dst[ow * g.stride] += src[ow];
          }
        }
      }
    }
  }
}

/// Splits [0, n) into `parts` contiguous ranges; range i is [begin(i), begin(i+1)).
inline int64_t chunk_begin(int64_t n, int64_t parts, int64_t i) { return n * i / parts; }

/// Images per GEMM: enough that the GEMM has >= ~192 columns (late layers have 4x4 outputs),
/// so one (O, K) x (K, G*P) product replaces G skinny ones.
inline int64_t conv_group_size(const conv2d_geometry& g) {
  const int64_t want = (192 + g.out_pixels() - 1) / std::max<int64_t>(g.out_pixels(), 1);
  return std::clamp<int64_t>(want, 1, std::max<int64_t>(g.batch, 1));
}

}  // namespace detail

/// y = conv2d(x, w) + b. `bias` may be null. y is (re)allocated to (N, O, HO, WO).
/// The batch is cut into groups of G images; per group (in parallel):
///   col (K, G*P) = [im2col(x[n0]) ... im2col(x[n0+G-1])],  out (O, G*P) = w · col,  y[n0+j] = out[:, jP:(j+1)P] + b
inline void conv2d_forward(const tensor<cpu>& x, const tensor<cpu>& w, const tensor<cpu>* bias, int64_t stride,
                           int64_t padding, tensor<cpu>& y) {
  const conv2d_geometry g = conv2d_geometry_of(x.shape(), w.shape(), stride, padding);
  if (bias) expect_shape(*bias, shape{g.out_channels}, "conv2d bias");
  const shape ys{g.batch, g.out_channels, g.out_h, g.out_w};
  if (!(y.shape() == ys)) y = tensor<cpu>(ys);
  const int64_t K = g.patch_size(), P = g.out_pixels(), O = g.out_channels;
  const int64_t in_stride = g.in_channels * g.height * g.width;
  const int64_t G = detail::conv_group_size(g), groups = (g.batch + G - 1) / std::max<int64_t>(G, 1);
  parallel_for(0, groups, [&](int64_t grp) {
    const int64_t n0 = grp * G, cnt = std::min(G, g.batch - n0), cols = cnt * P;
    const float* col = x.data() + n0 * in_stride;  // a single pointwise image is its own col
    if (!(cnt == 1 && g.is_pointwise())) {
      float* buf = detail::conv_workspace(0, size_t(K * cols));
      for (int64_t j = 0; j < cnt; ++j) detail::im2col(g, x.data() + (n0 + j) * in_stride, buf + j * P, cols);
      col = buf;
    }
    float* out = cnt == 1 ? y.data() + n0 * O * P : detail::conv_workspace(1, size_t(O * cols));
    gemm(cpu{}, trans::no, trans::no, O, cols, K, 1.0f, w.data(), K, col, cols, 0.0f, out, cols);
    for (int64_t j = 0; j < cnt; ++j) {
      float* yn = y.data() + (n0 + j) * O * P;
      for (int64_t o = 0; o < O; ++o) {
        const float b = bias ? (*bias)[o] : 0.0f;
        float* dst = yn + o * P;
        const float* src = out + o * cols + j * P;
        if (cnt == 1) {
          if (bias)
            for (int64_t i = 0; i < P; ++i) dst[i] += b;
        } else {
          for (int64_t i = 0; i < P; ++i) dst[i] = src[i] + b;
        }
      }
    }
  });
}

/// Backward of conv2d_forward. Accumulates dw (+=) and db (+=, if non-null);
/// writes dx (if non-null), (re)allocated to x's shape. Per group of G images:
///   dyg (O, G*P) = [dy[n0] ... dy[n0+G-1]],  dw += dyg · colᵀ,  dcol = wᵀ · dyg,  dx[n] = col2im(dcol[:, n])
inline void conv2d_backward(const tensor<cpu>& x, const tensor<cpu>& w, const tensor<cpu>& dy, int64_t stride,
                            int64_t padding, tensor<cpu>* dx, tensor<cpu>& dw, tensor<cpu>* db) {
  const conv2d_geometry g = conv2d_geometry_of(x.shape(), w.shape(), stride, padding);
  expect_shape(dy, shape{g.batch, g.out_channels, g.out_h, g.out_w}, "conv2d backward dy");
  expect_shape(dw, w.shape(), "conv2d backward dw");
  if (db) expect_shape(*db, shape{g.out_channels}, "conv2d backward db");
  if (dx && !(dx->shape() == x.shape())) *dx = tensor<cpu>(x.shape());
  const int64_t K = g.patch_size(), P = g.out_pixels(), O = g.out_channels;
  const int64_t in_stride = g.in_channels * g.height * g.width;
  const int64_t G = detail::conv_group_size(g), groups = (g.batch + G - 1) / std::max<int64_t>(G, 1);

  // Each part (a contiguous range of groups) accumulates its own dw partial; partials are summed in
  // a fixed order, so the result does not depend on scheduling.
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(groups, num_threads()));
  std::vector<float> partial(size_t(parts > 1 ? (parts - 1) * O * K : 0), 0.0f);
  parallel_for(0, parts, [&](int64_t part) {
    float* dw_part = part == 0 ? dw.data() : partial.data() + (part - 1) * O * K;
    for (int64_t grp = detail::chunk_begin(groups, parts, part); grp < detail::chunk_begin(groups, parts, part + 1);
         ++grp) {
      const int64_t n0 = grp * G, cnt = std::min(G, g.batch - n0), cols = cnt * P;
      const float* col = x.data() + n0 * in_stride;
      if (!(cnt == 1 && g.is_pointwise())) {
        float* buf = detail::conv_workspace(0, size_t(K * cols));
        for (int64_t j = 0; j < cnt; ++j) detail::im2col(g, x.data() + (n0 + j) * in_stride, buf + j * P, cols);
        col = buf;
      }
      const float* dyg = dy.data() + n0 * O * P;
      if (cnt > 1) {
        float* buf = detail::conv_workspace(1, size_t(O * cols));
        for (int64_t j = 0; j < cnt; ++j)
          for (int64_t o = 0; o < O; ++o)
            std::memcpy(buf + o * cols + j * P, dyg + (j * O + o) * P, size_t(P) * sizeof(float));
        dyg = buf;
      }
      // dw (O, K) += dyg (O, cols) · colᵀ (cols, K)
      gemm(cpu{}, trans::no, trans::yes, O, K, cols, 1.0f, dyg, cols, col, cols, 1.0f, dw_part, K);
      if (dx) {
        float* dxn = dx->data() + n0 * in_stride;
        if (cnt == 1 && g.is_pointwise()) {
          gemm(cpu{}, trans::yes, trans::no, K, P, O, 1.0f, w.data(), K, dyg, P, 0.0f, dxn, P);
        } else {
          float* dcol = detail::conv_workspace(2, size_t(K * cols));
          gemm(cpu{}, trans::yes, trans::no, K, cols, O, 1.0f, w.data(), K, dyg, cols, 0.0f, dcol, cols);
          std::fill_n(dxn, cnt * in_stride, 0.0f);
          for (int64_t j = 0; j < cnt; ++j) detail::col2im_add(g, dcol + j * P, dxn + j * in_stride, cols);
        }
      }
    }
  });
  for (int64_t part = 1; part < parts; ++part) {
    const float* src = partial.data() + (part - 1) * O * K;
    float* dst = dw.data();
    for (int64_t i = 0; i < O * K; ++i) dst[i] += src[i];
  }
  if (db) {
    for (int64_t o = 0; o < O; ++o) {
      double sum = 0;
      for (int64_t n = 0; n < g.batch; ++n) {
        const float* p = dy.data() + (n * O + o) * P;
        for (int64_t i = 0; i < P; ++i) sum += p[i];
      }
      (*db)[o] += float(sum);
    }
  }
}

}  // namespace ssl::ops
