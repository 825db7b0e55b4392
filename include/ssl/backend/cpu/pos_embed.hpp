#pragma once
// Position embeddings on the CPU.
//
// Bicubic resize of a grid of embeddings, exactly torch.nn.functional.interpolate(mode="bicubic",
// align_corners=False, size=(oh, ow)) on a (1, D, gh, gw) tensor:
//   per axis, scale = in / out, src = (dst + 0.5) scale - 0.5, i0 = floor(src), t = src - i0,
//   taps i0-1 .. i0+2 (clamped to [0, in-1]) with Keys' weights (A = -0.75):
//     w(-1) = c2(t + 1), w(0) = c1(t), w(1) = c1(1 - t), w(2) = c2(2 - t)
//     c1(x) = ((A + 2) x - (A + 3)) x^2 + 1,  c2(x) = ((A x - 5A) x + 8A) x - 4A
// so the resize is linear: out = R_h X R_w^T per channel, with (out, in) matrices R_h, R_w.
//   grid: (gh, gw, D) (row-major tokens, channels last) -> (oh, ow, D);  backward: R_h^T dY R_w.
//
// Fixed 2-D sin-cos embedding (MAE's get_2d_sincos_pos_embed): for a token at (row r, col c),
//   omega_k = 10000^(-k / (D/4)), k < D/4;  first D/2 channels encode c, last D/2 encode r:
//   [sin(c omega), cos(c omega), sin(r omega), cos(r omega)]; an optional [CLS] row of zeros first.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "gemm.hpp"

namespace ssl::ops {

/// (out, in) matrix of PyTorch's bicubic interpolation along one axis (align_corners = False).
inline std::vector<float> bicubic_matrix(int64_t in, int64_t out) {
  check<value_error>(in >= 1 && out >= 1, "bicubic_matrix: expected sizes >= 1, got in = ", in, ", out = ", out);
  std::vector<float> m(size_t(out * in), 0.0f);
  if (in == out) {  // identity (what PyTorch computes for equal sizes)
    for (int64_t i = 0; i < in; ++i) m[size_t(i * in + i)] = 1.0f;
    return m;
  }
  constexpr double A = -0.75;
  auto c1 = [](double x) { return ((A + 2) * x - (A + 3)) * x * x + 1; };
  auto c2 = [](double x) { return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; };
  const float scale = float(in) / float(out);  // PyTorch computes the source index in float
  for (int64_t o = 0; o < out; ++o) {
    const float src = scale * (float(o) + 0.5f) - 0.5f;
    const int64_t i0 = int64_t(std::floor(src));
    const double t = double(src - float(i0));
    const double w[4] = {c2(t + 1), c1(t), c1(1 - t), c2(2 - t)};
    for (int k = 0; k < 4; ++k) {
      const int64_t i = std::clamp<int64_t>(i0 - 1 + k, 0, in - 1);
      m[size_t(o * in + i)] += float(w[k]);
    }
  }
  return m;
}

/// grid (gh, gw, D) -> (oh, ow, D), bicubic, align_corners = False.
inline tensor<cpu> bicubic_resize(const tensor<cpu>& grid, int64_t oh, int64_t ow) {
  check<shape_error>(grid.rank() == 3, "bicubic_resize: expected a (gh, gw, D) grid, got ", grid.shape());
  const int64_t gh = grid.dim(0), gw = grid.dim(1), D = grid.dim(2);
  if (gh == oh && gw == ow) return grid;
  const std::vector<float> rh = bicubic_matrix(gh, oh), rw = bicubic_matrix(gw, ow);
  tensor<cpu> tmp(shape{oh, gw, D});  // rows first: tmp = R_h X  ((oh, gh) x (gh, gw D))
  gemm(cpu{}, trans::no, trans::no, oh, gw * D, gh, 1.0f, rh.data(), gh, grid.data(), gw * D, 0.0f, tmp.data(), gw * D);
  tensor<cpu> out(shape{oh, ow, D});
  for (int64_t a = 0; a < oh; ++a)  // then columns: out[a] = R_w tmp[a]  ((ow, gw) x (gw, D))
    gemm(cpu{}, trans::no, trans::no, ow, D, gw, 1.0f, rw.data(), gw, tmp.data() + a * gw * D, D, 0.0f,
         out.data() + a * ow * D, D);
  return out;
}

/// Adjoint of bicubic_resize: dout (oh, ow, D) -> dgrid (gh, gw, D).
inline tensor<cpu> bicubic_resize_backward(const tensor<cpu>& dout, int64_t gh, int64_t gw) {
  check<shape_error>(dout.rank() == 3, "bicubic_resize_backward: expected a (oh, ow, D) gradient, got ", dout.shape());
  const int64_t oh = dout.dim(0), ow = dout.dim(1), D = dout.dim(2);
  if (gh == oh && gw == ow) return dout;
  const std::vector<float> rh = bicubic_matrix(gh, oh), rw = bicubic_matrix(gw, ow);
  tensor<cpu> tmp(shape{oh, gw, D});
  for (int64_t a = 0; a < oh; ++a)  // dtmp[a] = R_w^T dout[a]
    gemm(cpu{}, trans::yes, trans::no, gw, D, ow, 1.0f, rw.data(), gw, dout.data() + a * ow * D, D, 0.0f,
         tmp.data() + a * gw * D, D);
  tensor<cpu> dgrid(shape{gh, gw, D});  // dgrid = R_h^T dtmp
  gemm(cpu{}, trans::yes, trans::no, gh, gw * D, oh, 1.0f, rh.data(), gh, tmp.data(), gw * D, 0.0f, dgrid.data(),
       gw * D);
  return dgrid;
}

/// Fixed 2-D sin-cos embedding: (cls + gh gw, D), D divisible by 4.
inline tensor<cpu> sincos_pos_embed_2d(int64_t D, int64_t gh, int64_t gw, bool cls_row) {
  check<value_error>(D > 0 && D % 4 == 0, "sincos_pos_embed_2d: expected an embedding size divisible by 4, got ", D);
  const int64_t q = D / 4, first = cls_row ? 1 : 0;
  tensor<cpu> e(shape{first + gh * gw, D}, 0.0f);
  for (int64_t r = 0; r < gh; ++r)
    for (int64_t c = 0; c < gw; ++c) {
      float* row = e.data() + (first + r * gw + c) * D;
      for (int64_t k = 0; k < q; ++k) {
        const double omega = 1.0 / std::pow(10000.0, double(k) / double(q));
        row[k] = float(std::sin(double(c) * omega));
        row[q + k] = float(std::cos(double(c) * omega));
        row[2 * q + k] = float(std::sin(double(r) * omega));
        row[3 * q + k] = float(std::cos(double(r) * omega));
      }
    }
  return e;
}

}  // namespace ssl::ops
