#pragma once
// transformer_block<B>: pre-norm ViT block (timm's Block), x (N, T, D) -> (N, T, D).
//   x1 = x  + drop_path(ls1(attn(norm1(x))))
//   y  = x1 + drop_path(ls2(ffn(norm2(x1))))
// ffn, by transformer_block_options::ffn:
//   mlp    (timm / DINO / MAE):  mlp.fc2(gelu(mlp.fc1(h))),          fc1 D -> H, fc2 H -> D,  H = mlp_ratio * D
//   swiglu (DINOv2's SwiGLUFFNFused, its ViT-g):  mlp.w3(silu(a) * b), [a | b] = mlp.w12(h),
//          w12 D -> 2H, w3 H -> D,  H = (int(2 h / 3) + 7) / 8 * 8, h = int(mlp_ratio D): 2/3 of the MLP's
//          width rounded up to a multiple of 8, about the MLP's parameter count (D 192, ratio 4: H 512, MLP 768)
// ls1 / ls2: LayerScale (per-channel gamma, init layer_scale; DINOv2 1e-5) when layer_scale > 0,
// else the identity (timm / DINO / MAE blocks have none).
// Backward:  dx1 = dy + norm2^T(ffn^T(ls2^T dp^T dy)),  dx = dx1 + norm1^T(attn^T(ls1^T dp^T dx1)).
// Names: norm1.*, attn.qkv.*, attn.proj.*, [ls1.gamma], norm2.*, mlp.fc1.* mlp.fc2.* | mlp.w12.* mlp.w3.*,
// [ls2.gamma] (timm / DINO / MAE; DINOv2 for ls1 / ls2 and w12 / w3). LayerNorm eps 1e-6, exact GELU;
// linears trunc_normal(std 0.02), biases 0.
#include <concepts>
#include <string>
#include <utility>

#include "../backend/cpu/vit_ops.hpp"
#include "drop_path.hpp"
#include "gelu.hpp"
#include "layer_norm.hpp"
#include "layer_scale.hpp"
#include "multi_head_attention.hpp"
#include "swiglu.hpp"
#include "../core/profile.hpp"
#if defined(__CUDACC__)
#include "../backend/cuda/vit_ops.cuh"  // the tensor<cuda> overloads of the same ops
#endif

namespace ssl {

/// The block's feed-forward: timm's GELU MLP, or DINOv2's SwiGLU (ffn_layer "swiglufused").
enum class ffn_kind { mlp, swiglu };

struct transformer_block_options {
  int64_t dim = 192;
  int64_t heads = 3;
  float mlp_ratio = 4.0f;
  bool qkv_bias = true;
  float norm_eps = 1e-6f;
  float drop_path = 0.0f;
  float init_std = 0.02f;
  float layer_scale = 0.0f;  // LayerScale init value of both branches (DINOv2: 1e-5); 0: no LayerScale
  ffn_kind ffn = ffn_kind::mlp;

  /// The feed-forward's hidden width H: dim mlp_ratio (timm's MLP), or for SwiGLU DINOv2's
  /// SwiGLUFFNFused width (int(2 h / 3) + 7) / 8 * 8 of h = dim mlp_ratio.
  int64_t hidden_features() const {
    check<value_error>(mlp_ratio > 0.0f, "transformer_block: expected mlp_ratio > 0, got ", mlp_ratio);
    const int64_t h = int64_t(double(dim) * double(mlp_ratio));
    if (ffn != ffn_kind::swiglu) return h;
    return (int64_t(double(2 * h) / 3.0) + 7) / 8 * 8;
  }
  /// Parameters of one block built from these options: two norms, qkv, proj, the feed-forward
  /// (fc1 D -> H, or w12 D -> 2H, then H -> D) and LayerScale's two D vectors when on.
  int64_t parameter_count() const {
    const int64_t D = dim, H = hidden_features(), fc1_out = ffn == ffn_kind::swiglu ? 2 * H : H;
    return 2 * 2 * D + (D * 3 * D + (qkv_bias ? 3 * D : 0)) + (D * D + D) + (D * fc1_out + fc1_out) + (H * D + D) +
           (layer_scale > 0.0f ? 2 * D : 0);
  }
};

template <class B = cpu>
class transformer_block {
 public:
  using backend_type = B;
  struct saved_type {
    typename layer_norm<B>::saved_type norm1, norm2;
    typename multi_head_attention<B>::saved_type attn;
    typename drop_path<B>::saved_type drop1, drop2;
    typename linear<B>::saved_type fc1, fc2;  // mlp.fc1 / fc2, or mlp.w12 / w3
    typename gelu<B>::saved_type act;         // ffn_kind::mlp
    typename swiglu<B>::saved_type glu;       // ffn_kind::swiglu
    typename layer_scale<B>::saved_type ls1, ls2;  // empty without LayerScale
  };

  transformer_block() = default;
  explicit transformer_block(const transformer_block_options& o, rng gen = rng(0))
      : opt_(o),
        norm1_(o.dim, o.norm_eps),
        attn_({.dim = o.dim, .heads = o.heads, .qkv_bias = o.qkv_bias, .init_std = o.init_std}, gen.fork(0)),
        norm2_(o.dim, o.norm_eps),
        fc1_(o.dim, o.ffn == ffn_kind::swiglu ? 2 * hidden_dim(o) : hidden_dim(o), true, gen.fork(1)),
        fc2_(hidden_dim(o), o.dim, true, gen.fork(2)),
        drop1_(o.drop_path, gen.fork(3).key()),
        drop2_(o.drop_path, gen.fork(4).key()) {
    fc1_.reset_trunc_normal(o.init_std, gen.fork(5));
    fc2_.reset_trunc_normal(o.init_std, gen.fork(6));
    check<value_error>(o.layer_scale >= 0.0f, "transformer_block: expected layer_scale >= 0 (0: none), got ",
                       o.layer_scale);
    if (has_layer_scale()) {
      ls1_ = layer_scale<B>(o.dim, o.layer_scale);
      ls2_ = layer_scale<B>(o.dim, o.layer_scale);
    }
  }

  const transformer_block_options& options() const { return opt_; }
  /// Stochastic depth of both residual branches from now on (their random streams are kept).
  void set_drop_path(float p) {
    drop1_.set_p(p);
    drop2_.set_p(p);
    opt_.drop_path = p;
  }
  multi_head_attention<B>& attn() { return attn_; }
  const multi_head_attention<B>& attn() const { return attn_; }
  bool has_layer_scale() const { return opt_.layer_scale > 0.0f; }
  /// H, the feed-forward's hidden width: mlp_ratio D for the MLP, DINOv2's rounded 2/3 of it for SwiGLU.
  int64_t hidden_features() const { return hidden_dim(opt_); }
  /// LayerScale of the attention (ls1) and MLP (ls2) branches; only with options().layer_scale > 0.
  layer_scale<B>& ls1() { return checked_ls(ls1_); }
  layer_scale<B>& ls2() { return checked_ls(ls2_); }

  output<saved_type, B> forward(const tensor<B>& x) {
    SSL_PROFILE_SCOPE("block residual/copies");
    check_input(x);
    output<saved_type, B> out;
    auto& s = out.saved;
    auto n1 = norm1_.forward(x);
    s.norm1 = std::move(n1.saved);
    auto a = attn_.forward(n1.y);
    s.attn = std::move(a.saved);
    if (has_layer_scale()) {
      auto l = ls1_.forward(std::move(a.y));
      s.ls1 = std::move(l.saved);
      a.y = std::move(l.y);
    }
    auto d1 = drop1_.forward(std::move(a.y));
    s.drop1 = std::move(d1.saved);
    tensor<B> x1 = std::move(d1.y);  // x1 = attn branch + x, in the branch's buffer (no copy of x)
    accumulate(x1, x);
    auto n2 = norm2_.forward(x1);
    s.norm2 = std::move(n2.saved);
    auto h = fc1_.forward(std::move(n2.y));
    s.fc1 = std::move(h.saved);
    tensor<B> hidden;
    if (opt_.ffn == ffn_kind::swiglu) {
      auto g = glu_.forward(std::move(h.y));
      s.glu = std::move(g.saved);
      hidden = std::move(g.y);
    } else {
      auto g = act_.forward(std::move(h.y));
      s.act = std::move(g.saved);
      hidden = std::move(g.y);
    }
    auto m = fc2_.forward(std::move(hidden));
    s.fc2 = std::move(m.saved);
    if (has_layer_scale()) {
      auto l = ls2_.forward(std::move(m.y));
      s.ls2 = std::move(l.saved);
      m.y = std::move(l.y);
    }
    auto d2 = drop2_.forward(std::move(m.y));
    s.drop2 = std::move(d2.saved);
    accumulate(x1, d2.y);
    out.y = std::move(x1);
    return out;
  }

  tensor<B> backward(const saved_type& s, const tensor<B>& dy) {
    SSL_PROFILE_SCOPE("block residual/copies");
    check<shape_error>(dy.rank() == 3 && dy.dim(2) == opt_.dim, "transformer_block::backward: expected dy (N, T, ",
                       opt_.dim, "), got ", dy.shape());
    tensor<B> g = drop2_.backward(s.drop2, dy);
    if (has_layer_scale()) g = ls2_.backward(s.ls2, g);
    g = fc2_.backward(s.fc2, g);
    g = fc1_.backward(s.fc1, opt_.ffn == ffn_kind::swiglu ? glu_.backward(s.glu, g) : act_.backward(s.act, g));
    tensor<B> dx1 = norm2_.backward(s.norm2, g);
    accumulate(dx1, dy);
    g = drop1_.backward(s.drop1, dx1);
    if (has_layer_scale()) g = ls1_.backward(s.ls1, g);
    tensor<B> dx = norm1_.backward(s.norm1, attn_.backward(s.attn, g));
    accumulate(dx, dx1);
    return dx;
  }

  tensor<B> infer(const tensor<B>& x) const { return infer(x, nullptr); }
  /// Inference; `probs` (optional) receives the attention probabilities (N, H, T, T).
  tensor<B> infer(const tensor<B>& x, tensor<B>* probs) const {
    check_input(x);
    tensor<B> x1 = attn_.infer(norm1_.infer(x), probs);
    if (has_layer_scale()) x1 = ls1_.infer(x1);
    accumulate(x1, x);
    tensor<B> h = fc1_.infer(norm2_.infer(x1));
    tensor<B> m = fc2_.infer(opt_.ffn == ffn_kind::swiglu ? glu_.infer(h) : act_.infer(h));
    if (has_layer_scale()) m = ls2_.infer(m);
    accumulate(x1, m);
    return x1;
  }

  void collect(param_list<B>& out, const std::string& prefix) {
    norm1_.collect(out, join_name(prefix, "norm1"));
    attn_.collect(out, join_name(prefix, "attn"));
    if (has_layer_scale()) ls1_.collect(out, join_name(prefix, "ls1"));
    norm2_.collect(out, join_name(prefix, "norm2"));
    const bool glu = opt_.ffn == ffn_kind::swiglu;
    fc1_.collect(out, join_name(prefix, glu ? "mlp.w12" : "mlp.fc1"));
    fc2_.collect(out, join_name(prefix, glu ? "mlp.w3" : "mlp.fc2"));
    if (has_layer_scale()) ls2_.collect(out, join_name(prefix, "ls2"));
  }

 private:
  /// y += x (the residual joins), in place: Eigen on the CPU, ops::add_range on the device.
  static void accumulate(tensor<B>& y, const tensor<B>& x) {
    if constexpr (std::same_as<B, cpu>)
      y.vec() += x.vec();
    else
      ops::add_range(y, 0, x, 0, x.numel());
  }
  layer_scale<B>& checked_ls(layer_scale<B>& ls) {
    check<value_error>(has_layer_scale(), "transformer_block: built without LayerScale (options().layer_scale = 0)");
    return ls;
  }
  static int64_t hidden_dim(const transformer_block_options& o) { return o.hidden_features(); }
  void check_input(const tensor<B>& x) const {
    check<shape_error>(x.rank() == 3 && x.dim(2) == opt_.dim, "transformer_block(", opt_.dim,
                       "): expected tokens (N, T, ", opt_.dim, "), got ", x.shape());
  }

  transformer_block_options opt_;
  layer_norm<B> norm1_;
  multi_head_attention<B> attn_;
  layer_norm<B> norm2_;
  linear<B> fc1_, fc2_;
  gelu<B> act_;
  swiglu<B> glu_;
  drop_path<B> drop1_, drop2_;
  layer_scale<B> ls1_, ls2_;  // default-constructed (empty) without LayerScale
};

}  // namespace ssl
