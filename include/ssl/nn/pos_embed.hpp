#pragma once
// pos_embed<B>: absolute position embedding added to a token sequence [CLS, patch tokens].
//   pos_embed: (1, 1 + gh gw, D) for the base grid gh x gw (28x28 images, p 4: 7x7, 50 rows).
//   forward(x (N, 1 + h w, D), h, w): y = x + [pos_cls; resize(pos_grid, h, w)]
//   where resize is bicubic (align_corners = False, size-based; identity when (h, w) = (gh, gw)),
//   so DINO's 12x12 local crops (3x3 tokens) reuse the 7x7 table; the CLS row is used unchanged.
//   backward: dx = dy; dpos_cls += sum_n dy[n, 0], dpos_grid += resize^T(sum_n dy[n, 1:]).
//   forward(x) alone assumes a square grid: h = w = sqrt(T - 1).
// kind::learned: trunc_normal(std 0.02), trainable (ViT, DINO, W2's decoder).
// kind::sincos: MAE's fixed 2-D sin-cos table (CLS row 0), a frozen parameter that gets no gradient.
// On the device (tensor<cuda>) the resize is one GEMM with the (h w, gh gw) Kronecker matrix
// R_h (x) R_w of the same 1-D bicubic matrices (built on the host once per grid, cached on B), and
// the batch sum / row add are ops::sum_batch / ops::add_rows.
#include <cmath>
#include <concepts>
#include <string>
#include <utility>
#include <vector>

#include "../backend/cpu/pos_embed.hpp"
#include "../backend/cpu/vit_ops.hpp"
#include "init.hpp"
#include "module.hpp"
#if defined(__CUDACC__)
#include "../backend/cuda/gemm.cuh"     // the tensor<cuda> overloads of the same ops
#include "../backend/cuda/vit_ops.cuh"
#endif

namespace ssl {

enum class pos_embed_kind { learned, sincos };

struct pos_embed_options {
  int64_t grid_h = 7, grid_w = 7;
  int64_t dim = 192;
  pos_embed_kind kind = pos_embed_kind::learned;
  float init_std = 0.02f;
};

template <class B = cpu>
class pos_embed {
 public:
  using backend_type = B;
  /// What backward needs: the token grid of the call.
  struct saved_type {
    int64_t h = 0, w = 0;
  };

  pos_embed() = default;
  explicit pos_embed(const pos_embed_options& o, rng gen = rng(0))
      : opt_(o), pos_(shape{1, 1 + check_grid(o) * o.grid_w, o.dim}, param_kind::weight) {
    if (o.kind == pos_embed_kind::learned) {
      init::trunc_normal(pos_.value, gen, o.init_std);
    } else {
      pos_.value.copy_from_host(ops::sincos_pos_embed_2d(o.dim, o.grid_h, o.grid_w, true).data());
      pos_.frozen = true;
    }
  }

  const pos_embed_options& options() const { return opt_; }
  parameter<B>& table() { return pos_; }
  const parameter<B>& table() const { return pos_; }

  /// The (1 + h w, D) rows added for an h x w token grid.
  tensor<B> rows_for(int64_t h, int64_t w) const {
    check<value_error>(h >= 1 && w >= 1, "pos_embed: expected a token grid of at least 1x1, got ", h, "x", w);
    const int64_t D = opt_.dim, G = opt_.grid_h * opt_.grid_w;
    tensor<B> out(shape{1 + h * w, D});
    if constexpr (std::same_as<B, cpu>) {
      std::copy_n(pos_.value.data(), D, out.data());
      if (h == opt_.grid_h && w == opt_.grid_w) {
        std::copy_n(pos_.value.data() + D, G * D, out.data() + D);
      } else {
        tensor<B> grid(shape{opt_.grid_h, opt_.grid_w, D});
        std::copy_n(pos_.value.data() + D, G * D, grid.data());
        const tensor<B> r = ops::bicubic_resize(grid, h, w);
        std::copy_n(r.data(), h * w * D, out.data() + D);
      }
    } else if (h == opt_.grid_h && w == opt_.grid_w) {
      tensor<B>::copy_elements(pos_.value.data(), out.data(), (1 + G) * D);
    } else {  // [pos_cls; R pos_grid]
      tensor<B>::copy_elements(pos_.value.data(), out.data(), D);
      ops::gemm(B{}, ops::trans::no, ops::trans::no, h * w, D, G, 1.0f, resize_matrix(h, w).data(), G,
                pos_.value.data() + D, D, 0.0f, out.data() + D, D);
    }
    return out;
  }

  output<saved_type, B> forward(const tensor<B>& x) {
    const auto [h, w] = square_grid(x);
    return forward(x, h, w);
  }
  output<saved_type, B> forward(const tensor<B>& x, int64_t h, int64_t w) { return {infer(x, h, w), saved_type{h, w}}; }

  tensor<B> backward(const saved_type& s, const tensor<B>& dy) {
    const int64_t D = opt_.dim, T = 1 + s.h * s.w;
    check<shape_error>(dy.rank() == 3 && dy.dim(1) == T && dy.dim(2) == D, "pos_embed::backward: expected dy (N, ", T,
                       ", ", D, "), got ", dy.shape());
    if (pos_.frozen) return dy;
    tensor<B> sum(shape{T, D}, 0.0f);  // sum over the batch, in sample order (deterministic)
    if constexpr (std::same_as<B, cpu>) {
      for (int64_t n = 0; n < dy.dim(0); ++n) sum.vec() += const_vector_map(dy.data() + n * T * D, T * D);
      float* g = pos_.grad.data();
      for (int64_t c = 0; c < D; ++c) g[c] += sum[c];
      tensor<B> dgrid(shape{s.h, s.w, D});
      std::copy_n(sum.data() + D, s.h * s.w * D, dgrid.data());
      const tensor<B> back = ops::bicubic_resize_backward(dgrid, opt_.grid_h, opt_.grid_w);
      vector_map(g + D, back.numel()) += back.vec();
    } else {
      ops::sum_batch(dy, sum);
      if (s.h == opt_.grid_h && s.w == opt_.grid_w) {
        ops::add_range(pos_.grad, 0, sum, 0, T * D);
      } else {  // dpos_cls += sum[0], dpos_grid += R^T sum[1:]
        const int64_t G = opt_.grid_h * opt_.grid_w;
        ops::add_range(pos_.grad, 0, sum, 0, D);
        ops::gemm(B{}, ops::trans::yes, ops::trans::no, G, D, s.h * s.w, 1.0f, resize_matrix(s.h, s.w).data(), G,
                  sum.data() + D, D, 1.0f, pos_.grad.data() + D, D);
      }
    }
    return dy;
  }

  tensor<B> infer(const tensor<B>& x) const {
    const auto [h, w] = square_grid(x);
    return infer(x, h, w);
  }
  tensor<B> infer(const tensor<B>& x, int64_t h, int64_t w) const {
    const int64_t D = opt_.dim, T = 1 + h * w;
    check<shape_error>(x.rank() == 3 && x.dim(1) == T && x.dim(2) == D, "pos_embed: expected tokens (N, ", T, ", ", D,
                       ") for a ", h, "x", w, " grid plus [CLS], got ", x.shape());
    const tensor<B> rows = rows_for(h, w);
    if constexpr (std::same_as<B, cpu>) {
      tensor<B> y = x;
      for (int64_t n = 0; n < x.dim(0); ++n) vector_map(y.data() + n * T * D, T * D) += rows.vec();
      return y;
    } else {
      return ops::add_rows(x, rows);
    }
  }

  void collect(param_list<B>& out, const std::string& prefix) { out.push_back({join_name(prefix, "pos_embed"), &pos_}); }

 private:
  static int64_t check_grid(const pos_embed_options& o) {
    check<value_error>(o.grid_h >= 1 && o.grid_w >= 1 && o.dim >= 1, "pos_embed: expected a positive grid and dim, got ",
                       o.grid_h, "x", o.grid_w, ", dim ", o.dim);
    return o.grid_h;
  }
  std::pair<int64_t, int64_t> square_grid(const tensor<B>& x) const {
    check<shape_error>(x.rank() == 3 && x.dim(1) >= 2, "pos_embed: expected tokens (N, 1 + h w, ", opt_.dim, "), got ",
                       x.shape());
    const int64_t side = int64_t(std::lround(std::sqrt(double(x.dim(1) - 1))));
    check<shape_error>(side * side == x.dim(1) - 1, "pos_embed: ", x.dim(1) - 1,
                       " patch tokens are not a square grid; pass (h, w) explicitly");
    return {side, side};
  }

  /// Device only: the (h w, gh gw) bicubic resize matrix R_h (x) R_w, built on the host, cached.
  const tensor<B>& resize_matrix(int64_t h, int64_t w) const {
    for (const auto& [hw, m] : resize_cache_)
      if (hw == std::pair<int64_t, int64_t>{h, w}) return m;
    const int64_t gh = opt_.grid_h, gw = opt_.grid_w;
    const std::vector<float> rh = ops::bicubic_matrix(gh, h), rw = ops::bicubic_matrix(gw, w);  // (h, gh), (w, gw)
    tensor<cpu> m(shape{h * w, gh * gw});
    for (int64_t i = 0; i < h; ++i)
      for (int64_t j = 0; j < w; ++j)
        for (int64_t a = 0; a < gh; ++a)
          for (int64_t b = 0; b < gw; ++b)
            m[(i * w + j) * gh * gw + a * gw + b] = rh[size_t(i * gh + a)] * rw[size_t(j * gw + b)];
    tensor<B> dm(m.shape());
    dm.copy_from_host(m.data());
    resize_cache_.emplace_back(std::pair<int64_t, int64_t>{h, w}, std::move(dm));
    return resize_cache_.back().second;
  }

  pos_embed_options opt_;
  parameter<B> pos_;
  mutable std::vector<std::pair<std::pair<int64_t, int64_t>, tensor<B>>> resize_cache_;  // device only
};

}  // namespace ssl
