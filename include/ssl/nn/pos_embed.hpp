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
#include <cmath>
#include <string>

#include "../backend/cpu/pos_embed.hpp"
#include "init.hpp"
#include "module.hpp"

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
      pos_.value = ops::sincos_pos_embed_2d(o.dim, o.grid_h, o.grid_w, true).reshape(pos_.value.shape());
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
    std::copy_n(pos_.value.data(), D, out.data());
    if (h == opt_.grid_h && w == opt_.grid_w) {
      std::copy_n(pos_.value.data() + D, G * D, out.data() + D);
    } else {
      tensor<B> grid(shape{opt_.grid_h, opt_.grid_w, D});
      std::copy_n(pos_.value.data() + D, G * D, grid.data());
      const tensor<B> r = ops::bicubic_resize(grid, h, w);
      std::copy_n(r.data(), h * w * D, out.data() + D);
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
    if (!pos_.frozen) {
      tensor<B> sum(shape{T, D}, 0.0f);  // sum over the batch, in sample order (deterministic)
      for (int64_t n = 0; n < dy.dim(0); ++n) sum.vec() += const_vector_map(dy.data() + n * T * D, T * D);
      float* g = pos_.grad.data();
      for (int64_t c = 0; c < D; ++c) g[c] += sum[c];
      tensor<B> dgrid(shape{s.h, s.w, D});
      std::copy_n(sum.data() + D, s.h * s.w * D, dgrid.data());
      const tensor<B> back = ops::bicubic_resize_backward(dgrid, opt_.grid_h, opt_.grid_w);
      vector_map(g + D, back.numel()) += back.vec();
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
    tensor<B> y = x;
    for (int64_t n = 0; n < x.dim(0); ++n) vector_map(y.data() + n * T * D, T * D) += rows.vec();
    return y;
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

  pos_embed_options opt_;
  parameter<B> pos_;
};

}  // namespace ssl
