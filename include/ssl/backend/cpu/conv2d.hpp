#pragma once
// 2-D convolution (cross-correlation, as PyTorch) on the CPU, parallel over the batch.
//   x: (N, C, H, W), w: (O, C, KH, KW), b: (O) or none, y: (N, O, HO, WO)
//   HO = (H + 2 pad - KH) / stride + 1,  WO likewise.
//   y[n] (O, HO*WO) = w (O, K) · col(x[n]) (K, HO*WO) + b,   K = C*KH*KW
// Backward:
//   dw += Σ_n dy[n] (O, P) · col(x[n])ᵀ (P, K);   db += Σ_{n,p} dy[n, o, p]
//   dx[n] = col2im(wᵀ (K, O) · dy[n] (O, P))
// No col matrix is built: a group of images is laid out as polyphase planes (see conv_phases) in
// which row k of col (one channel and kernel tap) is a contiguous run of floats starting at an
// offset of its own, and register tiles (tile_product.hpp) read those runs in place:
//   forward  out (O, cols) = Σ_k w[:, k] ⊗ plane run k        (w packed in panels of tile rows)
//   dx       dplanes[run k] += Σ_o wᵀ[k, o] dy[o, :]          (the adjoint: runs summed in place)
//   dw       dwᵀ (K, O) += Σ_t run_k[t] · dyᵀ[t, :]
// The runs cover a grid of OH rows x (images x WQ) columns, a little wider than the output
// (columns WO..WQ-1 of every image row are computed and dropped, their dy set to 0).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../../core/parallel.hpp"
#include "gemm.hpp"
#include "tile_product.hpp"

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
/// Slots: 0 planes, 1 output / dy on the grid, 2 dyᵀ, 3 dx planes, 4 dwᵀ partials, 5 packed w,
/// 6 packed wᵀ (4-6 belong to the calling thread, shared read-only by the workers).
inline float* conv_workspace(int slot, size_t n) {
  thread_local std::vector<float> ws[7];
  if (ws[slot].size() < n) ws[slot].resize(n);
  return ws[slot].data();
}
inline int64_t* conv_offsets_workspace(size_t n) {
  thread_local std::vector<int64_t> ws;
  if (ws.size() < n) ws.resize(n);
  return ws.data();
}

inline int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

/// Polyphase layout of a group of `images` zero-padded images, which makes every kernel tap a
/// contiguous run. With padded coordinates (u, v) = (h + pad, w + pad) and stride s, the value of
/// image j at (u, v) goes to phase plane (u mod s, v mod s), row u / s, column j WQ + v / s:
///   planes (C, s, s, HQ, images * WQ),  HQ = ceil(Hp / s), WQ = ceil(Wp / s), Hp = H + 2 pad.
/// Tap (ki, kj) at output (oh, ow) of image j reads padded (oh s + ki, ow s + kj) = plane
/// (ki mod s, kj mod s) at row oh + ki / s, column j WQ + ow + kj / s: over the grid of columns
/// (oh, j, ow) with ow < WQ, that is the run starting at tap_offset(c, ki, kj) (grid column
/// oh * row() + j WQ + ow). For s = 1 the planes are the zero-padded images side by side.
struct conv_phases {
  int64_t s, hq, wq, images;
  conv_phases(const conv2d_geometry& g, int64_t n)
      : s(g.stride),
        hq((g.height + 2 * g.padding + g.stride - 1) / g.stride),
        wq((g.width + 2 * g.padding + g.stride - 1) / g.stride),
        images(n) {}
  int64_t row() const { return images * wq; }  // one plane row: the images' rows side by side
  int64_t plane() const { return hq * row(); }
  int64_t per_channel() const { return s * s * plane(); }
  /// Offset of the first value tap (ki, kj) of channel c reads (grid column 0).
  int64_t tap_offset(int64_t c, int64_t ki, int64_t kj) const {
    return c * per_channel() + ((ki % s) * s + (kj % s)) * plane() + (ki / s) * row() + kj / s;
  }
};

/// Image j of the group: planes rows from x (C, H, W), zero where (u, v) is padding.
inline void to_phases(const conv2d_geometry& g, const conv_phases& q, const float* x, float* ph, int64_t j) {
  const int64_t H = g.height, W = g.width, p = g.padding, s = q.s;
  if (s == 2) {
    // Stride 2: input column w lands in phase (w + p) mod 2 at (w + p) / 2, so one pass over
    // each input row deinterleaves it into the two phase rows of its parity (pairs w = 2m, 2m + 1).
    for (int64_t c = 0; c < g.in_channels; ++c) {
      const float* xc = x + c * H * W;
      for (int64_t a = 0; a < 2; ++a) {
        for (int64_t i = 0; i < q.hq; ++i) {
          float* r0 = ph + c * q.per_channel() + (a * 2 + 0) * q.plane() + i * q.row() + j * q.wq;
          float* r1 = r0 + q.plane();
          for (int64_t k = 0; k < q.wq; ++k) r0[k] = r1[k] = 0.0f;
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
        float* plane = ph + c * q.per_channel() + (a * s + b) * q.plane() + j * q.wq;
        // columns k whose w = k s + b - p lies in [0, W)
        const int64_t off = b - p;
        const int64_t k_lo = off >= 0 ? 0 : (-off + s - 1) / s;
        const int64_t k_hi = std::clamp<int64_t>(off >= W ? 0 : (W - 1 - off) / s + 1, k_lo, q.wq);
        for (int64_t i = 0; i < q.hq; ++i) {
          float* d = plane + i * q.row();
          const int64_t h = i * s + a - p;
          if (h < 0 || h >= H) {
            for (int64_t k = 0; k < q.wq; ++k) d[k] = 0.0f;
            continue;
          }
          const float* src = xc + h * W + off;
          for (int64_t k = 0; k < k_lo; ++k) d[k] = 0.0f;
          if (s == 1)
            for (int64_t k = k_lo; k < k_hi; ++k) d[k] = src[k];
          else
            for (int64_t k = k_lo; k < k_hi; ++k) d[k] = src[k * s];
          for (int64_t k = k_hi; k < q.wq; ++k) d[k] = 0.0f;
        }
      }
    }
  }
}

/// dx (C, H, W) of image j = the interior of its planes (the adjoint of to_phases, padding dropped).
inline void from_phases(const conv2d_geometry& g, const conv_phases& q, const float* ph, float* dx, int64_t j) {
  const int64_t H = g.height, W = g.width, p = g.padding, s = q.s;
  for (int64_t c = 0; c < g.in_channels; ++c) {
    for (int64_t h = 0; h < H; ++h) {
      const int64_t u = h + p;
      float* d = dx + (c * H + h) * W;
      const float* rows = ph + c * q.per_channel() + (u % s) * s * q.plane() + (u / s) * q.row() + j * q.wq;
      if (s == 2) {  // the inverse interleave of to_phases' stride-2 path
        const float* e = rows + (p & 1) * q.plane() + (p >> 1);
        const float* o = rows + ((p + 1) & 1) * q.plane() + ((p + 1) >> 1);
        for (int64_t m = 0; m < W / 2; ++m) {
          d[2 * m] = e[m];
          d[2 * m + 1] = o[m];
        }
        if (W & 1) d[W - 1] = e[W / 2];
        continue;
      }
      for (int64_t b = 0; b < s; ++b) {
        // w with (w + p) mod s == b, i.e. w = k s + b - p
        const float* src = rows + b * q.plane();
        const int64_t off = b - p;
        const int64_t k_lo = off >= 0 ? 0 : (-off + s - 1) / s;
        const int64_t k_hi = std::clamp<int64_t>(off >= W ? 0 : (W - 1 - off) / s + 1, k_lo, q.wq);
        float* dd = d + off;
        if (s == 1)
          for (int64_t k = k_lo; k < k_hi; ++k) dd[k] = src[k];
        else
          for (int64_t k = k_lo; k < k_hi; ++k) dd[k * s] = src[k];
      }
    }
  }
}

/// One group of images [n0, n0 + images): its planes, the run offset of each row of col, and
/// the grid the runs cover (cols columns, padded to whole tiles).
struct conv_group {
  conv_phases q;
  int64_t cols, cols_padded, planes_size;  // planes_size: floats the runs may touch (>= the planes)
  const int64_t* offset;                   // K run offsets (thread-local)

  conv_group(const conv2d_geometry& g, int64_t images) : q(g, images) {
    const int64_t K = g.patch_size();
    int64_t* off = conv_offsets_workspace(size_t(K));
    int64_t max_off = 0;
    for (int64_t c = 0; c < g.in_channels; ++c)
      for (int64_t ki = 0; ki < g.kernel_h; ++ki)
        for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
          const int64_t o = q.tap_offset(c, ki, kj);
          off[(c * g.kernel_h + ki) * g.kernel_w + kj] = o;
          max_off = std::max(max_off, o);
        }
    offset = off;
    cols = g.out_h * q.row();
    cols_padded = round_up(cols, tile_cols);
    planes_size = std::max(g.in_channels * q.per_channel(), max_off + cols_padded);
  }

  /// The planes of the images x (images, C, H, W) in workspace `slot` (tail beyond them zeroed).
  float* load(const conv2d_geometry& g, const float* x, int slot) const {
    float* ph = conv_workspace(slot, size_t(planes_size));
    const int64_t in_stride = g.in_channels * g.height * g.width, filled = g.in_channels * q.per_channel();
    for (int64_t j = 0; j < q.images; ++j) to_phases(g, q, x + j * in_stride, ph, j);
    std::fill(ph + filled, ph + planes_size, 0.0f);
    return ph;
  }
  /// Grid column of output (oh, ow) of image j.
  int64_t column(int64_t oh, int64_t j, int64_t ow) const { return oh * q.row() + j * q.wq + ow; }
};

/// Images per group: the group's planes within 128K floats (512 KiB of the 2 MiB L2) and its
/// grid within about 1024 columns; between half that and that many, the count whose grid wastes
/// the fewest columns on rounding up to whole tiles (4x4 outputs: 8 images, 160 columns).
inline int64_t conv_group_size(const conv2d_geometry& g) {
  const conv_phases one(g, 1);
  const int64_t planes = std::max<int64_t>(g.in_channels * one.per_channel(), 1);
  const int64_t cols = std::max<int64_t>(g.out_h * one.wq, 1);
  const int64_t most = std::clamp<int64_t>(std::min(131072 / planes, 1024 / cols), 1, std::max<int64_t>(g.batch, 1));
  int64_t best = most;
  for (int64_t G = most; G >= (most + 1) / 2; --G)  // waste(G) < waste(best), compared without division
    if (round_up(G * cols, tile_cols) * best * cols < round_up(best * cols, tile_cols) * G * cols) best = G;
  return best;
}

/// Splits [0, n) into `parts` contiguous ranges; range i is [begin(i), begin(i+1)).
inline int64_t chunk_begin(int64_t n, int64_t parts, int64_t i) { return n * i / parts; }

/// Parts of a batch of n images in groups of G: one per thread, at most one per group.
inline int64_t conv_parts(int64_t n, int64_t G) {
  return std::max<int64_t>(1, std::min<int64_t>((n + G - 1) / std::max<int64_t>(G, 1), num_threads()));
}

/// Contraction block of the tiles: 256 steps keep a tile's 256 x 32 operand run in L1.
constexpr int64_t conv_block = 256;

/// Forward of images [n0, n0 + cnt). w_panels: w (O, K) packed by pack_row_panels.
inline void conv2d_forward_group(const conv2d_geometry& g, const float* x, const float* w_panels, const float* bias,
                                 int64_t n0, int64_t cnt, float* y) {
  const int64_t K = g.patch_size(), O = g.out_channels, OH = g.out_h, OW = g.out_w, P = g.out_pixels();
  const conv_group grp(g, cnt);
  const float* ph = grp.load(g, x + n0 * g.in_channels * g.height * g.width, 0);
  const int64_t ld = grp.cols_padded;
  float* out = conv_workspace(1, size_t(O * ld));
  for (int64_t k0 = 0; k0 < K; k0 += conv_block) {
    const int64_t kn = std::min(conv_block, K - k0);
    const int64_t* off = grp.offset + k0;
    for (int64_t p = 0; p < ld; p += tile_cols)
      for_row_blocks(O, [&]<int MR>(int64_t r0) {
        const float* panel = w_panels + r0 * K + k0 * MR;
        vfloat acc[MR][2];
        tile_product<MR>(
            kn, [panel](int r, int64_t t) { return panel[t * MR + r]; },
            [ph, off, p](int64_t t) { return ph + off[t] + p; }, acc);
        for (int r = 0; r < MR; ++r) {
          float* d = out + (r0 + r) * ld + p;
          if (k0 == 0)
            store_tile_row(d, acc[r]);
          else
            add_tile_row(d, acc[r]);
        }
      });
  }
  // y[n0 + j][o][oh][ow] = out[o][column(oh, j, ow)] + b[o]
  for (int64_t j = 0; j < cnt; ++j)
    for (int64_t o = 0; o < O; ++o) {
      const float b = bias ? bias[o] : 0.0f;
      float* dst = y + ((n0 + j) * O + o) * P;
      for (int64_t oh = 0; oh < OH; ++oh) {
        const float* src = out + o * ld + grp.column(oh, j, 0);
        for (int64_t ow = 0; ow < OW; ++ow) dst[oh * OW + ow] = src[ow] + b;
      }
    }
}

/// dy of images [n0, n0 + cnt) on the group's grid (O, ld) in workspace slot 1: zero in the
/// dropped columns (ow >= WO) and the rounding columns.
inline float* grid_dy(const conv2d_geometry& g, const conv_group& grp, const float* dy, int64_t n0, int64_t cnt) {
  const int64_t O = g.out_channels, OH = g.out_h, OW = g.out_w, P = g.out_pixels(), ld = grp.cols_padded;
  float* dyg = conv_workspace(1, size_t(O * ld));
  for (int64_t o = 0; o < O; ++o) {
    float* row = dyg + o * ld;
    std::fill(row, row + ld, 0.0f);
    for (int64_t j = 0; j < cnt; ++j) {
      const float* src = dy + ((n0 + j) * O + o) * P;
      for (int64_t oh = 0; oh < OH; ++oh) {
        float* d = row + grp.column(oh, j, 0);
        for (int64_t ow = 0; ow < OW; ++ow) d[ow] = src[oh * OW + ow];
      }
    }
  }
  return dyg;
}

/// Weight gradient of images [n0, n0 + cnt): dwt (K, Op) += the group's dwᵀ (Op = O rounded up to
/// whole tiles).
inline void conv2d_weights_group(const conv2d_geometry& g, const float* x, const float* dy, int64_t n0, int64_t cnt,
                                 float* dwt) {
  const int64_t K = g.patch_size(), O = g.out_channels;
  const conv_group grp(g, cnt);
  const float* ph = grp.load(g, x + n0 * g.in_channels * g.height * g.width, 0);
  const int64_t ld = grp.cols_padded;
  const float* dyg = grid_dy(g, grp, dy, n0, cnt);

  // dyᵀ in column tiles: dyt[o / 32][t][o % 32] = dyg[o][t], zero in the rows o >= O. Tile-major,
  // so the 32 floats of one t are contiguous (a (t, O) layout puts them 4 Op bytes apart, and at
  // Op = 256 the rows of a tile fall into 4 of the 64 L1 sets). Transposed in square blocks of
  // one vector's width (Op and ld are multiples of tile_cols, so blocks never cross the edge).
  const int64_t Op = round_up(O, tile_cols), L = vector_floats;
  float* dyt = conv_workspace(2, size_t(ld * Op));
  for (int64_t o0 = 0; o0 < Op; o0 += L)
    for (int64_t t0 = 0; t0 < ld; t0 += L) {
      float* d = dyt + (o0 / tile_cols) * ld * tile_cols + t0 * tile_cols + o0 % tile_cols;
      for (int64_t t = 0; t < L; ++t)
        for (int64_t o = 0; o < L; ++o) d[t * tile_cols + o] = o0 + o < O ? dyg[(o0 + o) * ld + t0 + t] : 0.0f;
    }

  // dwᵀ[k][o] += Σ_t run_k[t] dyᵀ[t][o]
  for (int64_t t0 = 0; t0 < ld; t0 += conv_block) {
    const int64_t tn = std::min(conv_block, ld - t0);
    for (int64_t o0 = 0; o0 < Op; o0 += tile_cols)
      for_row_blocks(K, [&]<int MR>(int64_t r0) {
        const float* runs[MR];
        for (int r = 0; r < MR; ++r) runs[r] = ph + grp.offset[r0 + r] + t0;
        const float* b = dyt + o0 * ld + t0 * tile_cols;
        vfloat acc[MR][2];
        tile_product<MR>(
            tn, [&runs](int r, int64_t t) { return runs[r][t]; }, [b](int64_t t) { return b + t * tile_cols; }, acc);
        for (int r = 0; r < MR; ++r) {
          float* d = dwt + (r0 + r) * Op + o0;
          add_tile_row(d, acc[r]);
        }
      });
  }
}

/// Input gradient of images [n0, n0 + cnt) into dx; wt_panels: wᵀ (K, O) packed by pack_row_panels.
inline void conv2d_input_group(const conv2d_geometry& g, const float* wt_panels, const float* dy, int64_t n0,
                               int64_t cnt, float* dx) {
  const int64_t K = g.patch_size(), O = g.out_channels, in_stride = g.in_channels * g.height * g.width;
  const conv_group grp(g, cnt);
  const int64_t ld = grp.cols_padded;
  const float* dyg = grid_dy(g, grp, dy, n0, cnt);

  // dplanes[run k] += Σ_o wᵀ[k][o] dy[o][:], then dx = the planes' interior.
  float* dph = conv_workspace(3, size_t(grp.planes_size));
  std::fill_n(dph, grp.planes_size, 0.0f);
  for (int64_t t0 = 0; t0 < O; t0 += conv_block) {
    const int64_t tn = std::min(conv_block, O - t0);
    for (int64_t p = 0; p < ld; p += tile_cols)
      for_row_blocks(K, [&]<int MR>(int64_t r0) {
        const float* panel = wt_panels + r0 * O + t0 * MR;
        const float* b = dyg + t0 * ld + p;
        vfloat acc[MR][2];
        tile_product<MR>(
            tn, [panel](int r, int64_t t) { return panel[t * MR + r]; }, [b, ld](int64_t t) { return b + t * ld; },
            acc);
        // Runs of one tile may overlap (taps of a channel in one phase plane): add row by row.
        for (int r = 0; r < MR; ++r) {
          float* d = dph + grp.offset[r0 + r] + p;
          add_tile_row(d, acc[r]);
        }
      });
  }
  for (int64_t j = 0; j < cnt; ++j) from_phases(g, grp.q, dph, dx + (n0 + j) * in_stride, j);
}

}  // namespace detail

/// y = conv2d(x, w) + b. `bias` may be null. y is (re)allocated to (N, O, HO, WO).
/// The batch is cut into one part per thread (equal ranges of images), each part into groups of
/// at most G images whose planes and output grid stay in L2 (conv2d_forward_group).
inline void conv2d_forward(const tensor<cpu>& x, const tensor<cpu>& w, const tensor<cpu>* bias, int64_t stride,
                           int64_t padding, tensor<cpu>& y) {
  const conv2d_geometry g = conv2d_geometry_of(x.shape(), w.shape(), stride, padding);
  if (bias) expect_shape(*bias, shape{g.out_channels}, "conv2d bias");
  const shape ys{g.batch, g.out_channels, g.out_h, g.out_w};
  if (!(y.shape() == ys)) y = tensor<cpu>(ys);
  const int64_t K = g.patch_size(), O = g.out_channels;
  float* w_panels = detail::conv_workspace(5, size_t(O * K));
  const float* wd = w.data();
  detail::pack_row_panels(O, K, w_panels, [wd, K](int64_t o, int64_t k) { return wd[o * K + k]; });
  const float* b = bias ? bias->data() : nullptr;
  const int64_t G = detail::conv_group_size(g);
  const int64_t parts = detail::conv_parts(g.batch, G);
  parallel_for(0, parts, [&](int64_t part) {
    const int64_t end = detail::chunk_begin(g.batch, parts, part + 1);
    for (int64_t n0 = detail::chunk_begin(g.batch, parts, part); n0 < end; n0 += G)
      detail::conv2d_forward_group(g, x.data(), w_panels, b, n0, std::min(G, end - n0), y.data());
  });
}

/// Weight (and bias) gradients of conv2d_forward: dw += Σ_n dy[n] · col(x[n])ᵀ, db += Σ dy (if non-null).
inline void conv2d_backward_weights(const tensor<cpu>& x, const tensor<cpu>& dy, int64_t stride, int64_t padding,
                                    tensor<cpu>& dw, tensor<cpu>* db) {
  const conv2d_geometry g = conv2d_geometry_of(x.shape(), dw.shape(), stride, padding, "conv2d backward");
  expect_shape(dy, shape{g.batch, g.out_channels, g.out_h, g.out_w}, "conv2d backward dy");
  if (db) expect_shape(*db, shape{g.out_channels}, "conv2d backward db");
  const int64_t K = g.patch_size(), O = g.out_channels, Op = detail::round_up(O, detail::tile_cols);
  const int64_t G = detail::conv_group_size(g);
  // Each part (an equal range of images, one per thread) accumulates its own dwᵀ partial (K, Op);
  // partials are summed in a fixed order, so the result does not depend on scheduling. They live
  // in the calling thread's workspace (no allocation per call).
  const int64_t parts = detail::conv_parts(g.batch, G);
  float* partial = detail::conv_workspace(4, size_t(parts * K * Op));
  std::fill_n(partial, parts * K * Op, 0.0f);
  parallel_for(0, parts, [&](int64_t part) {
    const int64_t end = detail::chunk_begin(g.batch, parts, part + 1);
    for (int64_t n0 = detail::chunk_begin(g.batch, parts, part); n0 < end; n0 += G)
      detail::conv2d_weights_group(g, x.data(), dy.data(), n0, std::min(G, end - n0), partial + part * K * Op);
  });
  // dw[o][k] += Σ_part dwᵀ_part[k][o], in part order
  float* dwd = dw.data();
  for (int64_t k = 0; k < K; ++k)
    for (int64_t o = 0; o < O; ++o) {
      float sum = 0.0f;
      for (int64_t part = 0; part < parts; ++part) sum += partial[(part * K + k) * Op + o];
      dwd[o * K + k] += sum;
    }
  if (db) {
    const int64_t P = g.out_pixels();
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

/// Input gradient of conv2d_forward for an input of shape x_shape: dx[n] = col2im(wᵀ · dy[n]).
/// Needs no input values, so a caller that owns the input can release it first (dx then reuses
/// its memory). dx is (re)allocated to x_shape.
inline void conv2d_backward_input(const shape& x_shape, const tensor<cpu>& w, const tensor<cpu>& dy, int64_t stride,
                                  int64_t padding, tensor<cpu>& dx) {
  const conv2d_geometry g = conv2d_geometry_of(x_shape, w.shape(), stride, padding, "conv2d backward");
  expect_shape(dy, shape{g.batch, g.out_channels, g.out_h, g.out_w}, "conv2d backward dy");
  if (!(dx.shape() == x_shape)) dx = tensor<cpu>(x_shape);
  const int64_t K = g.patch_size(), O = g.out_channels;
  float* wt_panels = detail::conv_workspace(6, size_t(K * O));
  const float* wd = w.data();
  detail::pack_row_panels(K, O, wt_panels, [wd, K](int64_t k, int64_t o) { return wd[o * K + k]; });
  const int64_t G = detail::conv_group_size(g);
  const int64_t parts = detail::conv_parts(g.batch, G);
  parallel_for(0, parts, [&](int64_t part) {
    const int64_t end = detail::chunk_begin(g.batch, parts, part + 1);
    for (int64_t n0 = detail::chunk_begin(g.batch, parts, part); n0 < end; n0 += G)
      detail::conv2d_input_group(g, wt_panels, dy.data(), n0, std::min(G, end - n0), dx.data());
  });
}

/// Backward of conv2d_forward. Accumulates dw (+=) and db (+=, if non-null);
/// writes dx (if non-null), (re)allocated to x's shape.
inline void conv2d_backward(const tensor<cpu>& x, const tensor<cpu>& w, const tensor<cpu>& dy, int64_t stride,
                            int64_t padding, tensor<cpu>* dx, tensor<cpu>& dw, tensor<cpu>* db) {
  expect_shape(dw, w.shape(), "conv2d backward dw");
  conv2d_backward_weights(x, dy, stride, padding, dw, db);
  if (dx) conv2d_backward_input(x.shape(), w, dy, stride, padding, *dx);
}

}  // namespace ssl::ops
