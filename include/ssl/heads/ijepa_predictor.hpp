#pragma once
// ijepa_predictor<B>: I-JEPA's narrow ViT predictor (Assran et al. 2023, the official
// VisionTransformerPredictor). It sees the context encoder's tokens at their positions and one
// mask token per target patch at that patch's position, and predicts the target encoder's
// representation of each target patch.
//   ctx (N, 1 + K_c, D_enc): the context encoder's tokens ([CLS] + K_c context patches)
//   e = embed(ctx)                                   (N, 1 + K_c, D)       Linear(D_enc, D)
//   pos = pos_embed                                   (1, 1 + L, D), fixed 2-D sin-cos (I-JEPA's)
//   seq = [e + pos[0, 1 + keep[n, :]];  mask_token + pos[1 + target[n, :]]]   (N, T, D), T = 1 + K_c + K_t
//   (a target patch may also be a context patch: it then appears twice, as in the official code)
//   seq = norm(block_depth-1(... block_0(seq)))       pre-norm blocks, LN eps 1e-6
//   pred = proj(seq[:, 1 + K_c:])                     (N, K_t, D_enc)      Linear(D, D_enc)
// The official encoder has no [CLS]; here the [CLS] token rides along as one more context token
// (so the encoder's [CLS] is trained too). Several target blocks are several rows of the batch:
// the method repeats the context once per block, as the official code does.
// Backward: the adjoint of each step; the mask token gets the sum of the gradients at target rows.
// Names: embed.*, mask_token (1,1,D), pos_embed (frozen with sincos), blocks.<i>.*, norm.*, proj.*
// (the official predictor_* names without the prefix). Init: linears trunc_normal(0.02), mask token
// trunc_normal(0.02) (the official init_std); LayerNorms 1 / 0.
// Every op is a token op of backend/cpu/vit_ops.hpp and patch_embed.hpp (backend/cuda/ under nvcc),
// so ijepa_predictor<cuda> runs the same step on the GPU.
#include <string>
#include <utility>
#include <vector>

#include "../backend/cpu/vit_ops.hpp"
#include "../core/profile.hpp"
#include "../nn/init.hpp"
#include "../nn/layer_norm.hpp"
#include "../nn/patch_embed.hpp"
#include "../nn/pos_embed.hpp"
#include "../nn/transformer_block.hpp"
#if defined(__CUDACC__)
#include "../backend/cuda/tokens.cuh"
#include "../backend/cuda/vit_ops.cuh"
#endif

namespace ssl {

struct ijepa_predictor_options {
  int64_t in_dim = 192;   // the encoder's token size D_enc
  int64_t dim = 96;       // the predictor's width (the official: 384 for ViT-H's 1280)
  int64_t depth = 4;
  int64_t heads = 3;
  float mlp_ratio = 4.0f;
  int64_t grid = 7;       // patches per side (L = grid^2)
  float norm_eps = 1e-6f;
  pos_embed_kind pos = pos_embed_kind::sincos;
};

template <class B = cpu>
class ijepa_predictor {
 public:
  using backend_type = B;
  struct saved_type {
    typename linear<B>::saved_type embed;
    std::vector<int32_t> restore;
    int64_t kept = 0;
    typename pos_embed<B>::saved_type pos;
    std::vector<int32_t> context_rows;  // (N, 1 + K_c) rows of the grid sequence: [CLS, context patches]
    std::vector<int32_t> target_rows;   // (N, K_t) rows of the grid sequence: the target patches
    std::vector<typename transformer_block<B>::saved_type> blocks;
    typename layer_norm<B>::saved_type norm;
    typename linear<B>::saved_type proj;
  };

  explicit ijepa_predictor(const ijepa_predictor_options& o = {}, rng gen = rng(0))
      : opt_(check_options(o)),
        embed_(o.in_dim, o.dim, true, gen.fork(0)),
        mask_token_(shape{1, 1, o.dim}, param_kind::weight),
        pos_({.grid_h = o.grid, .grid_w = o.grid, .dim = o.dim, .kind = o.pos}, gen.fork(1)),
        norm_(o.dim, o.norm_eps),
        proj_(o.dim, o.in_dim, true, gen.fork(2)) {
    embed_.reset_trunc_normal(0.02f, gen.fork(3));
    proj_.reset_trunc_normal(0.02f, gen.fork(4));
    rng mg = gen.fork(5);
    init::trunc_normal(mask_token_.value, mg, 0.02f);
    for (int64_t i = 0; i < o.depth; ++i)
      blocks_.emplace_back(
          transformer_block_options{.dim = o.dim, .heads = o.heads, .mlp_ratio = o.mlp_ratio, .norm_eps = o.norm_eps},
          gen.fork(100 + uint64_t(i)));
  }

  const ijepa_predictor_options& options() const { return opt_; }
  int64_t num_patches() const { return opt_.grid * opt_.grid; }
  parameter<B>& mask_token() { return mask_token_; }

  /// ctx (N, 1 + K_c, D_enc) with its context mask (kept = K_c); targets: N K_t patch indices
  /// (raster order; they may coincide with context patches) -> predictions (N, K_t, D_enc).
  output<saved_type, B> forward(const tensor<B>& ctx, const token_mask& context, const std::vector<int32_t>& targets,
                                int64_t target_tokens) {
    SSL_PROFILE_SCOPE("ijepa predictor");
    check_input(ctx, context, targets, target_tokens);
    output<saved_type, B> out;
    auto& s = out.saved;
    auto e = embed_.forward(ctx);
    s.embed = std::move(e.saved);
    s.restore = context.restore;
    s.kept = context.kept;
    s.context_rows = context_rows(context);
    s.target_rows = target_rows(targets);
    s.pos = {opt_.grid, opt_.grid};
    tensor<B> seq = input_sequence(e.y, s.restore, s.kept, s.context_rows, s.target_rows, target_tokens);
    s.blocks.resize(blocks_.size());
    for (size_t i = 0; i < blocks_.size(); ++i) {
      auto b = blocks_[i].forward(seq);
      s.blocks[i] = std::move(b.saved);
      seq = std::move(b.y);
    }
    auto n = norm_.forward(ops::slice_tokens(seq, 1 + context.kept, target_tokens));
    s.norm = std::move(n.saved);
    auto p = proj_.forward(n.y);
    s.proj = std::move(p.saved);
    out.y = std::move(p.y);
    return out;
  }

  /// dpred (N, K_t, D_enc) -> dctx (N, 1 + K_c, D_enc); accumulates parameter gradients.
  tensor<B> backward(const saved_type& s, const tensor<B>& dpred) {
    SSL_PROFILE_SCOPE("ijepa predictor");
    const int64_t L = num_patches(), N = int64_t(s.restore.size()) / L, Kc = s.kept;
    const int64_t Kt = N > 0 ? int64_t(s.target_rows.size()) / N : 0;
    check<shape_error>(dpred.rank() == 3 && dpred.dim(0) == N && dpred.dim(1) == Kt && dpred.dim(2) == opt_.in_dim,
                       "ijepa_predictor::backward: expected dpred (", N, ", ", Kt, ", ", opt_.in_dim, "), got ",
                       dpred.shape());
    // The norm only saw the target rows (LayerNorm is per token): the context rows get 0 there.
    tensor<B> g = ops::unslice_tokens(norm_.backward(s.norm, proj_.backward(s.proj, dpred)), 1 + Kc + Kt, 1 + Kc);
    for (size_t i = blocks_.size(); i-- > 0;) g = blocks_[i].backward(s.blocks[i], g);
    // Target rows: mask token + position only (their (N, 1, D) [CLS] gradient is 0 and dropped).
    (void)ops::unshuffle_tokens_backward(
        pos_.backward(s.pos, ops::scatter_tokens(ops::slice_tokens(g, 1 + Kc, Kt), s.target_rows, 1 + L)),
        identity_restore(N), 0, mask_token_.grad);
    const tensor<B> gc = pos_.backward(s.pos, ops::scatter_tokens(ops::slice_tokens(g, 0, 1 + Kc), s.context_rows, 1 + L));
    return embed_.backward(s.embed, ops::unshuffle_tokens_backward(gc, s.restore, Kc, mask_token_.grad));
  }

  tensor<B> infer(const tensor<B>& ctx, const token_mask& context, const std::vector<int32_t>& targets,
                  int64_t target_tokens) const {
    check_input(ctx, context, targets, target_tokens);
    tensor<B> seq = input_sequence(embed_.infer(ctx), context.restore, context.kept, context_rows(context),
                                   target_rows(targets), target_tokens);
    for (const auto& b : blocks_) seq = b.infer(seq);
    return proj_.infer(norm_.infer(ops::slice_tokens(seq, 1 + context.kept, target_tokens)));
  }

  void collect(param_list<B>& out, const std::string& prefix) {
    embed_.collect(out, join_name(prefix, "embed"));
    out.push_back({join_name(prefix, "mask_token"), &mask_token_});
    pos_.collect(out, prefix);
    for (size_t i = 0; i < blocks_.size(); ++i) blocks_[i].collect(out, join_name(prefix, "blocks." + std::to_string(i)));
    norm_.collect(out, join_name(prefix, "norm"));
    proj_.collect(out, join_name(prefix, "proj"));
  }

 private:
  static const ijepa_predictor_options& check_options(const ijepa_predictor_options& o) {
    check<value_error>(o.in_dim > 0 && o.dim > 0 && o.depth > 0 && o.grid > 0 && o.heads > 0 && o.dim % o.heads == 0,
                       "ijepa_predictor: expected positive in_dim, dim, depth, grid and heads dividing dim, got in_dim ",
                       o.in_dim, ", dim ", o.dim, ", depth ", o.depth, ", grid ", o.grid, ", heads ", o.heads);
    return o;
  }

  /// [embedded context + its positions; mask token + the target positions]: (N, 1 + K_c + K_t, D).
  ///   context part: e scattered to its patches (unshuffle), + pos, gathered back at [0, 1 + keep]
  ///   target part:  every patch a mask token (unshuffle with nothing kept), + pos, gathered at 1 + targets
  tensor<B> input_sequence(const tensor<B>& e, const std::vector<int32_t>& restore, int64_t Kc,
                           const std::vector<int32_t>& ctx_rows, const std::vector<int32_t>& tgt_rows, int64_t Kt) const {
    const int64_t g = opt_.grid, N = e.dim(0), T = 1 + Kc + Kt;
    const tensor<B> c = ops::gather_tokens(pos_.infer(ops::unshuffle_tokens(e, restore, Kc, mask_token_.value), g, g),
                                           ctx_rows, 1 + Kc);
    const tensor<B> t = ops::gather_tokens(
        pos_.infer(ops::unshuffle_tokens(ops::slice_tokens(e, 0, 1), identity_restore(N), 0, mask_token_.value), g, g),
        tgt_rows, Kt);
    return ops::residual_add(ops::unslice_tokens(c, T, 0), ops::unslice_tokens(t, T, 1 + Kc));
  }
  /// Per sample [0, 1 + keep[n, :]]: the context rows of the (1 + L)-token grid sequence.
  static std::vector<int32_t> context_rows(const token_mask& context) {
    const int64_t N = context.batch, Kc = context.kept;
    std::vector<int32_t> rows(size_t(N * (1 + Kc)));
    for (int64_t n = 0; n < N; ++n) {
      rows[size_t(n * (1 + Kc))] = 0;
      for (int64_t k = 0; k < Kc; ++k) rows[size_t(n * (1 + Kc) + 1 + k)] = 1 + context.keep[size_t(n * Kc + k)];
    }
    return rows;
  }
  static std::vector<int32_t> target_rows(const std::vector<int32_t>& targets) {
    std::vector<int32_t> rows(targets.size());
    for (size_t i = 0; i < targets.size(); ++i) rows[i] = 1 + targets[i];
    return rows;
  }
  std::vector<int32_t> identity_restore(int64_t N) const {
    const int64_t L = num_patches();
    std::vector<int32_t> r(size_t(N * L));
    for (int64_t i = 0; i < N * L; ++i) r[size_t(i)] = int32_t(i % L);
    return r;
  }

  void check_input(const tensor<B>& ctx, const token_mask& context, const std::vector<int32_t>& targets,
                   int64_t Kt) const {
    const int64_t L = num_patches(), N = context.batch;
    check<shape_error>(context.tokens == L && int64_t(context.restore.size()) == N * L &&
                           int64_t(context.keep.size()) == N * context.kept,
                       "ijepa_predictor: the context mask covers ", context.tokens, " patches, the predictor expects ", L);
    check<shape_error>(ctx.rank() == 3 && ctx.dim(0) == N && ctx.dim(1) == 1 + context.kept && ctx.dim(2) == opt_.in_dim,
                       "ijepa_predictor: expected context tokens (", N, ", ", 1 + context.kept, ", ", opt_.in_dim,
                       ") ([CLS] + context patches), got ", ctx.shape());
    check<shape_error>(Kt >= 1 && int64_t(targets.size()) == N * Kt, "ijepa_predictor: expected ", N, " x ", Kt,
                       " target indices (K_t >= 1), got ", targets.size());
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < Kt; ++k) {
        const int32_t t = targets[size_t(n * Kt + k)];
        check<value_error>(t >= 0 && t < L, "ijepa_predictor: target patch ", t, " of sample ", n, " outside [0, ", L, ")");
      }
  }

  ijepa_predictor_options opt_;
  linear<B> embed_;
  parameter<B> mask_token_;
  pos_embed<B> pos_;
  std::vector<transformer_block<B>> blocks_;
  layer_norm<B> norm_;
  linear<B> proj_;
};

}  // namespace ssl
