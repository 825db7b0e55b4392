#pragma once
// mae_decoder<B>: MAE's light decoder (He et al. 2022), as shared/WORKLOADS.md W2 defines it.
//   latent (N, 1 + K, D_enc): encoder tokens ([CLS] + K visible patches, after the encoder's norm)
//   e = embed(latent)                                (N, 1 + K, D)         Linear(D_enc, D)
//   full[n, 0] = e[n, 0];  full[n, 1 + l] = e[n, 1 + restore[n, l]] if patch l was kept, else mask_token
//   full += pos_embed                                 (1, 1 + L, D), learned (or MAE's fixed sin-cos)
//   full = norm(block_depth-1(... block_0(full)))     pre-norm blocks, LN eps 1e-6
//   pred = pred(full[:, 1:])                          (N, L, P)   Linear(D, P), [CLS] dropped
// Backward: the adjoint of each step; the mask token gets the sum of the gradients at hidden positions.
// Names: embed.*, mask_token (1,1,D), pos_embed, blocks.<i>.*, norm.*, pred.* (MAE's decoder_* names
// without the prefix). W2 sizes (D_enc 192, D 128, depth 2, 4 heads, P 16, L 49): 430,096 parameters.
// Init: linears trunc_normal(0.02) (MAE uses xavier; W2 is silent, ViT's rule kept), mask_token normal(0.02).
// The token plumbing is ops::unshuffle_tokens / slice_tokens and their adjoints (backend/cpu/vit_ops.hpp,
// backend/cuda/vit_ops.cuh under nvcc), so mae_decoder<cuda> runs the same step on the GPU.
#include <string>
#include <utility>
#include <vector>

#include "../backend/cpu/vit_ops.hpp"
#include "../nn/layer_norm.hpp"
#include "../nn/patch_embed.hpp"
#include "../nn/pos_embed.hpp"
#include "../nn/transformer_block.hpp"
#include "../core/profile.hpp"
#if defined(__CUDACC__)
#include "../backend/cuda/vit_ops.cuh"  // the tensor<cuda> overloads of the same ops
#endif

namespace ssl {

struct mae_decoder_options {
  int64_t in_dim = 192;
  int64_t dim = 128;
  int64_t depth = 2;
  int64_t heads = 4;
  float mlp_ratio = 4.0f;
  int64_t grid = 7;        // patches per side (L = grid^2)
  int64_t patch_dim = 16;  // values predicted per patch (C p p)
  float norm_eps = 1e-6f;
  pos_embed_kind pos = pos_embed_kind::learned;
};

template <class B = cpu>
class mae_decoder {
 public:
  using backend_type = B;
  struct saved_type {
    typename linear<B>::saved_type embed;
    std::vector<int32_t> restore;
    int64_t kept = 0;
    typename pos_embed<B>::saved_type pos;
    std::vector<typename transformer_block<B>::saved_type> blocks;
    typename layer_norm<B>::saved_type norm;
    typename linear<B>::saved_type pred;
  };

  explicit mae_decoder(const mae_decoder_options& o = {}, rng gen = rng(0))
      : opt_(o),
        embed_(o.in_dim, o.dim, true, gen.fork(0)),
        mask_token_(shape{1, 1, o.dim}, param_kind::weight),
        pos_({.grid_h = o.grid, .grid_w = o.grid, .dim = o.dim, .kind = o.pos}, gen.fork(1)),
        norm_(o.dim, o.norm_eps),
        pred_(o.dim, o.patch_dim, true, gen.fork(2)) {
    check<value_error>(o.grid > 0 && o.patch_dim > 0 && o.depth > 0, "mae_decoder: expected positive grid, patch_dim ",
                       "and depth, got ", o.grid, ", ", o.patch_dim, ", ", o.depth);
    embed_.reset_trunc_normal(0.02f, gen.fork(3));
    pred_.reset_trunc_normal(0.02f, gen.fork(4));
    rng mg = gen.fork(5);
    tensor<cpu> mask_token(shape{1, 1, o.dim});  // drawn on the host on every backend
    for (int64_t c = 0; c < o.dim; ++c) mask_token[c] = mg.normal(0.0f, 0.02f);
    mask_token_.value.copy_from_host(mask_token.data());
    for (int64_t i = 0; i < o.depth; ++i)
      blocks_.emplace_back(
          transformer_block_options{.dim = o.dim, .heads = o.heads, .mlp_ratio = o.mlp_ratio, .norm_eps = o.norm_eps},
          gen.fork(100 + uint64_t(i)));
  }

  const mae_decoder_options& options() const { return opt_; }
  int64_t num_patches() const { return opt_.grid * opt_.grid; }
  parameter<B>& mask_token() { return mask_token_; }

  output<saved_type, B> forward(const tensor<B>& latent, const token_mask& m) {
    SSL_PROFILE_SCOPE("token gather/scatter");
    check_input(latent, m);
    output<saved_type, B> out;
    auto& s = out.saved;
    auto e = embed_.forward(latent);
    s.embed = std::move(e.saved);
    s.restore = m.restore;
    s.kept = m.kept;
    tensor<B> full = pos_.infer(ops::unshuffle_tokens(e.y, m.restore, m.kept, mask_token_.value), opt_.grid, opt_.grid);
    s.pos = {opt_.grid, opt_.grid};
    s.blocks.resize(blocks_.size());
    for (size_t i = 0; i < blocks_.size(); ++i) {
      auto b = blocks_[i].forward(full);
      s.blocks[i] = std::move(b.saved);
      full = std::move(b.y);
    }
    auto n = norm_.forward(full);
    s.norm = std::move(n.saved);
    auto p = pred_.forward(ops::slice_tokens(n.y, 1, num_patches()));  // [CLS] dropped
    s.pred = std::move(p.saved);
    out.y = std::move(p.y);
    return out;
  }

  /// dpred (N, L, P) -> dlatent (N, 1 + K, D_enc); accumulates parameter gradients.
  tensor<B> backward(const saved_type& s, const tensor<B>& dpred) {
    SSL_PROFILE_SCOPE("token gather/scatter");
    const int64_t L = num_patches();
    check<shape_error>(dpred.rank() == 3 && dpred.dim(1) == L && dpred.dim(2) == opt_.patch_dim,
                       "mae_decoder::backward: expected dpred (N, ", L, ", ", opt_.patch_dim, "), got ", dpred.shape());
    const tensor<B> dtok = pred_.backward(s.pred, dpred);  // (N, L, D)
    tensor<B> g = norm_.backward(s.norm, ops::unslice_tokens(dtok, 1 + L, 1));  // [CLS] row: 0
    for (size_t i = blocks_.size(); i-- > 0;) g = blocks_[i].backward(s.blocks[i], g);
    g = pos_.backward(s.pos, g);
    // Adjoint of the unshuffle: kept positions go back to their latent rows, hidden ones to the mask token.
    const tensor<B> de = ops::unshuffle_tokens_backward(g, s.restore, s.kept, mask_token_.grad);
    return embed_.backward(s.embed, de);
  }

  tensor<B> infer(const tensor<B>& latent, const token_mask& m) const {
    check_input(latent, m);
    tensor<B> full = pos_.infer(ops::unshuffle_tokens(embed_.infer(latent), m.restore, m.kept, mask_token_.value),
                                opt_.grid, opt_.grid);
    for (const auto& b : blocks_) full = b.infer(full);
    return pred_.infer(ops::slice_tokens(norm_.infer(full), 1, num_patches()));
  }

  void collect(param_list<B>& out, const std::string& prefix) {
    embed_.collect(out, join_name(prefix, "embed"));
    out.push_back({join_name(prefix, "mask_token"), &mask_token_});
    pos_.collect(out, prefix);
    for (size_t i = 0; i < blocks_.size(); ++i) blocks_[i].collect(out, join_name(prefix, "blocks." + std::to_string(i)));
    norm_.collect(out, join_name(prefix, "norm"));
    pred_.collect(out, join_name(prefix, "pred"));
  }

 private:
  void check_input(const tensor<B>& latent, const token_mask& m) const {
    check<shape_error>(latent.rank() == 3 && latent.dim(2) == opt_.in_dim && latent.dim(1) == 1 + m.kept &&
                           latent.dim(0) == m.batch,
                       "mae_decoder: expected latent tokens (", m.batch, ", ", 1 + m.kept, ", ", opt_.in_dim,
                       ") ([CLS] + kept patches), got ", latent.shape());
    check<shape_error>(m.tokens == num_patches(), "mae_decoder: the mask covers ", m.tokens,
                       " patches, the decoder expects ", num_patches());
  }

  mae_decoder_options opt_;
  linear<B> embed_;
  parameter<B> mask_token_;
  pos_embed<B> pos_;
  std::vector<transformer_block<B>> blocks_;
  layer_norm<B> norm_;
  linear<B> pred_;
};

}  // namespace ssl
