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
/// Slots: 0 col, 1 grouped output / dy, 2 dcol, 3 phase planes, 4 dw partials (calling thread).
inline float* conv_workspace(int slot, size_t n) {
  thread_local std::vector<float> ws[5];
  if (ws[slot].size() < n) ws[slot].resize(n);
  return ws[slot].data();
}

/// Polyphase layout of one padded image, which makes every kernel tap a set of contiguous rows.
/// With padded coordinates (u, v) = (h + pad, w + pad) and stride s, the value at (u, v) goes to
/// phase plane (u mod s, v mod s) at (u / s, v / s): phases (C, s, s, HQ, WQ), HQ = ceil(Hp / s),
/// WQ = ceil(Wp / s), Hp = H + 2 pad. Tap (ki, kj) at output (oh, ow) reads padded (oh s + ki, ow s + kj)
/// = plane (ki mod s, kj mod s) at (oh + ki / s, ow + kj / s): a plain row copy for any stride.
/// For s = 1 this is the zero-padded image itself.
struct conv_phases {
  int64_t s, hq, wq;
  explicit conv_phases(const conv2d_geometry& g)
      : s(g.stride),
        hq((g.height + 2 * g.padding + g.stride - 1) / g.stride),
        wq((g.width + 2 * g.padding + g.stride - 1) / g.stride) {}
  int64_t plane() const { return hq * wq; }
  int64_t per_channel() const { return s * s * plane(); }
  /// Offset of the first value tap (ki, kj) reads in channel c's phases.
  int64_t tap_offset(int64_t c, int64_t ki, int64_t kj) const {
    return c * per_channel() + ((ki % s) * s + (kj % s)) * plane() + (ki / s) * wq + kj / s;
  }
};

/// phases (C, s, s, HQ, WQ) of one image x (C, H, W), zero where (u, v) is padding.
inline void to_phases(const conv2d_geometry& g, const conv_phases& q, const float* x, float* ph) {
  const int64_t H = g.height, W = g.width, p = g.padding, s = q.s;
  if (s == 2) {
    // Stride 2: input column w lands in phase (w + p) mod 2 at (w + p) / 2, so one pass over
    // each input row deinterleaves it into the two phase rows of its parity (pairs w = 2m, 2m + 1).
    for (int64_t c = 0; c < g.in_channels; ++c) {
      const float* xc = x + c * H * W;
      for (int64_t a = 0; a < 2; ++a) {
        for (int64_t i = 0; i < q.hq; ++i) {
          float* r0 = ph + c * q.per_channel() + (a * 2 + 0) * q.plane() + i * q.wq;
          float* r1 = ph + c * q.per_channel() + (a * 2 + 1) * q.plane() + i * q.wq;
          for (int64_t j = 0; j < q.wq; ++j) r0[j] = r1[j] = 0.0f;
          const int64_t h = i * 2 + a - p;
          if (h < 0 || h >= H) continue;
          float* rows[2] = {r0, r1};
          float* e = rows[p & 1] + (p >> 1);              // receives w = 2m
          float* o = rows[(p + 1) & 1] + ((p + 1) >> 1);  // receives w = 2m + 1
          const float* src = xc + h * W;
          for (int64_t m = 0; m < W / 2; ++m) {
            e[m] = src[2 * m];
            o[m] = src[2 * m + 1];
          }
          if (W & 1) e[W / 2] = src[W - 1];
        }
      }
    }
    return;
  }
  for (int64_t c = 0; c < g.in_channels; ++c) {
    const float* xc = x + c * H * W;
    for (int64_t a = 0; a < s; ++a) {
      for (int64_t b = 0; b < s; ++b) {
        float* plane = ph + c * q.per_channel() + (a * s + b) * q.plane();
        // columns j whose w = j s + b - p lies in [0, W)
        const int64_t off = b - p;
        const int64_t j_lo = off >= 0 ? 0 : (-off + s - 1) / s;
        const int64_t j_hi = std::clamp<int64_t>(off >= W ? 0 : (W - 1 - off) / s + 1, j_lo, q.wq);
        for (int64_t i = 0; i < q.hq; ++i) {
          float* d = plane + i * q.wq;
          const int64_t h = i * s + a - p;
          if (h < 0 || h >= H) {
            for (int64_t j = 0; j < q.wq; ++j) d[j] = 0.0f;
            continue;
          }
          const float* src = xc + h * W + off;
          for (int64_t j = 0; j < j_lo; ++j) d[j] = 0.0f;
          if (s == 1)
            for (int64_t j = j_lo; j < j_hi; ++j) d[j] = src[j];
          else
            for (int64_t j = j_lo; j < j_hi; ++j) d[j] = src[j * s];
          for (int64_t j = j_hi; j < q.wq; ++j) d[j] = 0.0f;
        }
      }
    }
  }
}

/// dx (C, H, W) = the interior of the phase planes (the adjoint of to_phases, padding dropped).
inline void from_phases(const conv2d_geometry& g, const conv_phases& q, const float* ph, float* dx) {
  const int64_t H = g.height, W = g.width, p = g.padding, s = q.s;
  if (s == 2) {  // the inverse interleave of to_phases' stride-2 path
    for (int64_t c = 0; c < g.in_channels; ++c) {
      for (int64_t h = 0; h < H; ++h) {
        const int64_t u = h + p;
        const float* rows[2] = {ph + c * q.per_channel() + ((u & 1) * 2 + 0) * q.plane() + (u >> 1) * q.wq,
                                ph + c * q.per_channel() + ((u & 1) * 2 + 1) * q.plane() + (u >> 1) * q.wq};
        const float* e = rows[p & 1] + (p >> 1);
        const float* o = rows[(p + 1) & 1] + ((p + 1) >> 1);
        float* d = dx + (c * H + h) * W;
        for (int64_t m = 0; m < W / 2; ++m) {
          d[2 * m] = e[m];
          d[2 * m + 1] = o[m];
        }
        if (W & 1) d[W - 1] = e[W / 2];
      }
    }
    return;
  }
  for (int64_t c = 0; c < g.in_channels; ++c) {
    for (int64_t h = 0; h < H; ++h) {
      const int64_t u = h + p;
      float* d = dx + (c * H + h) * W;
      for (int64_t b = 0; b < s; ++b) {
        // w with (w + p) mod s == b, i.e. w = j s + b - p
        const float* src = ph + c * q.per_channel() + ((u % s) * s + b) * q.plane() + (u / s) * q.wq;
        const int64_t off = b - p;
        const int64_t j_lo = off >= 0 ? 0 : (-off + s - 1) / s;
        const int64_t j_hi = std::clamp<int64_t>(off >= W ? 0 : (W - 1 - off) / s + 1, j_lo, q.wq);
        float* dd = d + off;
        if (s == 1)
          for (int64_t j = j_lo; j < j_hi; ++j) dd[j] = src[j];
        else
          for (int64_t j = j_lo; j < j_hi; ++j) dd[j * s] = src[j];
      }
    }
  }
}

/// col (C*KH*KW, HO*WO) from one image x (C, H, W), row r at col + r * ldc; zeros where the
/// window hits padding. ldc > HO*WO places several images side by side (a group of the batch).
/// Goes through the image's phase planes (workspace of the calling thread): every tap row is a copy.
inline void im2col(const conv2d_geometry& g, const float* x, float* col, int64_t ldc) {
  const conv_phases q(g);
  float* ph = conv_workspace(3, size_t(g.in_channels * q.per_channel()));
  to_phases(g, q, x, ph);
  const int64_t OH = g.out_h, OW = g.out_w;
  for (int64_t c = 0; c < g.in_channels; ++c) {
    for (int64_t ki = 0; ki < g.kernel_h; ++ki) {
      for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
        float* row = col + ((c * g.kernel_h + ki) * g.kernel_w + kj) * ldc;
        const float* src = ph + q.tap_offset(c, ki, kj);
        for (int64_t oh = 0; oh < OH; ++oh) {
          const float* r = src + oh * q.wq;
          float* o = row + oh * OW;
          for (int64_t ow = 0; ow < OW; ++ow) o[ow] = r[ow];
        }
      }
    }
  }
}

/// dx (C, H, W) = col2im(dcol (C*KH*KW, HO*WO), rows ldc apart): the adjoint of im2col. Taps are
/// summed into zeroed phase planes with contiguous row adds, then the interior is copied out.
inline void col2im(const conv2d_geometry& g, const float* dcol, float* dx, int64_t ldc) {
  const conv_phases q(g);
  float* ph = conv_workspace(3, size_t(g.in_channels * q.per_channel()));
  std::fill_n(ph, g.in_channels * q.per_channel(), 0.0f);
  const int64_t OH = g.out_h, OW = g.out_w;
  for (int64_t c = 0; c < g.in_channels; ++c) {
    for (int64_t ki = 0; ki < g.kernel_h; ++ki) {
      for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
        const float* row = dcol + ((c * g.kernel_h + ki) * g.kernel_w + kj) * ldc;
        float* dst = ph + q.tap_offset(c, ki, kj);
        for (int64_t oh = 0; oh < OH; ++oh) {
          float* r = dst + oh * q.wq;
          const float* o = row + oh * OW;
          for (int64_t ow = 0; ow < OW; ++ow) r[ow] += o[ow];
        }
      }
    }
  }
  from_phases(g, q, ph, dx);
}

/// Splits [0, n) into `parts` contiguous ranges; range i is [begin(i), begin(i+1)).
inline int64_t chunk_begin(int64_t n, int64_t parts, int64_t i) { return n * i / parts; }

/// Images per GEMM: about 400 columns (late layers have 7x7 and 4x4 outputs, so several images
/// share one (O, K) x (K, G*P) product instead of G skinny ones), but at most as many as keep the
/// group's col buffer (K, G*P) within 256K floats (1 MiB, half of a 2 MiB L2).
inline int64_t conv_group_size(const conv2d_geometry& g) {
  constexpr int64_t target = 400, budget = 262144;
  const int64_t P = std::max<int64_t>(g.out_pixels(), 1);
  const int64_t want = (target + P - 1) / P;
  const int64_t fits = std::max<int64_t>(1, budget / std::max<int64_t>(g.patch_size() * P, 1));
  return std::clamp<int64_t>(std::min(want, fits), 1, std::max<int64_t>(g.batch, 1));
}

}  // namespace detail

namespace detail {
/// Forward of images [n0, n0 + cnt) as one GEMM (see conv2d_forward).
inline void conv2d_forward_group(const conv2d_geometry& g, const tensor<cpu>& x, const tensor<cpu>& w,
                                 const tensor<cpu>* bias, int64_t n0, int64_t cnt, tensor<cpu>& y) {
  const int64_t K = g.patch_size(), P = g.out_pixels(), O = g.out_channels;
  const int64_t in_stride = g.in_channels * g.height * g.width, cols = cnt * P;
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
}

/// Parts of a batch of n images in groups of G: one per thread, at most one per group.
inline int64_t conv_parts(int64_t n, int64_t G) {
  return std::max<int64_t>(1, std::min<int64_t>((n + G - 1) / std::max<int64_t>(G, 1), num_threads()));
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
  const int64_t G = detail::conv_group_size(g);
  // One part per thread, each an equal range of images cut into groups of at most G (equal
  // images per thread: the last stage's 37 groups of 14 would leave one thread a group short).
  const int64_t parts = detail::conv_parts(g.batch, G);
  parallel_for(0, parts, [&](int64_t part) {
    const int64_t end = detail::chunk_begin(g.batch, parts, part + 1);
    for (int64_t n0 = detail::chunk_begin(g.batch, parts, part); n0 < end; n0 += G)
      detail::conv2d_forward_group(g, x, w, bias, n0, std::min(G, end - n0), y);
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
  const int64_t G = detail::conv_group_size(g);

  // Each part (an equal range of images, one per thread, cut into groups of at most G) accumulates
  // its own dw partial; partials are summed in a fixed order, so the result does not depend on
  // scheduling. The partials live in the calling thread's workspace (no allocation per call).
  const int64_t parts = detail::conv_parts(g.batch, G);
  float* partial = detail::conv_workspace(4, size_t(parts > 1 ? (parts - 1) * O * K : 1));
  std::fill_n(partial, parts > 1 ? (parts - 1) * O * K : 0, 0.0f);
  parallel_for(0, parts, [&](int64_t part) {
    float* dw_part = part == 0 ? dw.data() : partial + (part - 1) * O * K;
    const int64_t end = detail::chunk_begin(g.batch, parts, part + 1);
    for (int64_t n0 = detail::chunk_begin(g.batch, parts, part); n0 < end; n0 += G) {
      const int64_t cnt = std::min(G, end - n0), cols = cnt * P;
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
          for (int64_t j = 0; j < cnt; ++j) detail::col2im(g, dcol + j * P, dxn + j * in_stride, cols);
        }
      }
    }
  });
  for (int64_t part = 1; part < parts; ++part) {
    const float* src = partial + (part - 1) * O * K;
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
