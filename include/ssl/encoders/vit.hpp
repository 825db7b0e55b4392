#pragma once
// vit<B>: Vision Transformer encoder (Dosovitskiy et al. 2021; timm / DINO / MAE layout).
//   x (N, C, H, W) -> patch tokens (N, L, D), L = (H/p)(W/p)      patch_embed (Conv2d k = s = p)
//   [optional] tokens of the hidden patches of a patch_mask <- mask_token (D)   (iBOT / DINOv2 student)
//   seq = [cls_token; tokens] + pos_embed (bicubic-resized for other grids)   (N, 1 + L, D)
//   [optional] keep only [CLS] + the visible patches of a token_mask (MAE: pos added before the gather)
//   [optional] seq = [CLS; register_tokens; patches]      R registers, no position (Darcet et al. 2024)
//   seq = block_depth-1(... block_0(seq))                 pre-norm blocks, optional LayerScale (DINOv2)
//   tokens = norm(seq without the registers)                                  (N, T, D), LN eps 1e-6
//   feature = tokens[:, 0] (pool::cls) or mean over the patch tokens (pool::mean)   (N, D)
// Names: cls_token (1,1,D), pos_embed (1,1+G,D), patch_embed.proj.*, blocks.<i>.*, norm.* (timm);
// mask_token (1,D) only with vit_options::mask_token (DINOv2's name and zero init); register_tokens
// (1,R,D) with vit_options::registers = R > 0 (DINOv2's name, init N(0, 1e-6^2)); blocks.<i>.ls1.gamma
// and ls2.gamma with vit_options::layer_scale > 0 (DINOv2's names; its ViTs use 1e-5); blocks.<i>.mlp.w12.*
// and mlp.w3.* in place of mlp.fc1 / fc2 with vit_options::ffn = ffn_kind::swiglu (DINOv2's ViT-g feed-forward).
// Registers are extra tokens every block attends to, dropped at the output: forward_tokens and
// infer_tokens return [CLS; patches] with or without them, so heads, MAE, iBOT and pooling are unchanged.
// attention(x, layer) returns the whole sequence [CLS, registers, patches]; cls_attention only the
// [CLS] and patch columns.
// Init: cls_token, pos_embed trunc_normal(0.02); patch proj xavier_uniform, bias 0; linears
// trunc_normal(0.02), bias 0; LayerNorms 1 / 0. Drop-path rates rise linearly to drop_path over depth.
// vit_options::tiny4() is ViT-T/4 of shared/WORKLOADS.md: 28x28x1, p 4, D 192, depth 6, 3 heads,
// 2,682,624 parameters. Any input whose sides are multiples of p works (12x12 crops: 3x3 tokens).
//
// Paths: forward/backward (features), forward_tokens/backward_tokens (all tokens, optional token_mask
// that drops patches (MAE) and patch_mask that replaces them by mask_token (MaskFeat-style, iBOT)), infer/infer_tokens (no saved state),
// infer_block_outputs(x, k) (the last k blocks' outputs: data2vec targets), attention(x, layer) and
// cls_attention(x) (DINO attention maps).
// Backends: vit<cuda> (under nvcc) runs the same paths with the device token ops; token masks stay
// host index lists (uploaded by ops::gather_tokens / scatter_tokens).
#include <charconv>
#include <concepts>
#include <string>
#include <utility>
#include <vector>

#include "../backend/cpu/vit_ops.hpp"
#include "../nn/layer_norm.hpp"
#include "../nn/patch_embed.hpp"
#include "../nn/pos_embed.hpp"
#include "../nn/transformer_block.hpp"
#if defined(__CUDACC__)
#include "../backend/cuda/gemm.cuh"  // the tensor<cuda> overloads of the same ops
#include "../backend/cuda/tokens.cuh"
#include "../backend/cuda/vit_ops.cuh"
#endif

namespace ssl {

enum class vit_pool { cls, mean };

struct vit_options {
  int64_t image_size = 28;  // base resolution: the position table covers (image_size / patch)^2 tokens
  int64_t patch = 4;
  int64_t in_channels = 1;
  int64_t dim = 192;
  int64_t depth = 6;
  int64_t heads = 3;
  float mlp_ratio = 4.0f;
  float norm_eps = 1e-6f;
  float drop_path = 0.0f;  // stochastic-depth rate of the last block
  pos_embed_kind pos = pos_embed_kind::learned;
  vit_pool pool = vit_pool::cls;
  bool mask_token = false;  // a learned (1, D) token for hidden patches (iBOT / DINOv2); zero init
  int64_t registers = 0;     // learned register tokens after [CLS] (Darcet et al. 2024: 4; DINOv2 "_reg")
  float layer_scale = 0.0f;  // LayerScale init of every block's two branches (DINOv2: 1e-5); 0: none
  ffn_kind ffn = ffn_kind::mlp;  // every block's feed-forward: GELU MLP, or DINOv2's SwiGLU (transformer_block.hpp)

  /// ViT-T/4 exactly as shared/WORKLOADS.md (Fashion-MNIST, 2,682,624 parameters).
  static vit_options tiny4() { return {}; }
  /// ViT-Tiny (D 192, depth 12, 3 heads) and ViT-Small (D 384, depth 12, 6 heads) at any patch / size.
  static vit_options tiny(int64_t image_size, int64_t patch, int64_t in_channels = 3) {
    return {.image_size = image_size, .patch = patch, .in_channels = in_channels, .dim = 192, .depth = 12, .heads = 3};
  }
  static vit_options small(int64_t image_size, int64_t patch, int64_t in_channels = 3) {
    return {.image_size = image_size, .patch = patch, .in_channels = in_channels, .dim = 384, .depth = 12, .heads = 6};
  }
  /// ViT-Base (D 768, depth 12, 12 heads) and ViT-Large (D 1024, depth 24, 16 heads): timm's
  /// vit_base_patch16_224 / vit_large_patch16_224 backbones at (224, 16, 3).
  static vit_options base(int64_t image_size, int64_t patch, int64_t in_channels = 3) {
    return {.image_size = image_size, .patch = patch, .in_channels = in_channels, .dim = 768, .depth = 12, .heads = 12};
  }
  static vit_options large(int64_t image_size, int64_t patch, int64_t in_channels = 3) {
    return {.image_size = image_size, .patch = patch, .in_channels = in_channels, .dim = 1024, .depth = 24, .heads = 16};
  }
  /// DINOv2's ViT-g (its vit_giant2): D 1536, depth 40, 24 heads, SwiGLU feed-forward (width 4096),
  /// with DINOv2's training additions (with_dinov2). The release uses patch 14 at 518 (37 x 37 grid).
  static vit_options dinov2_giant(int64_t image_size, int64_t patch = 14, int64_t in_channels = 3,
                                  int64_t registers = 0) {
    vit_options o{.image_size = image_size, .patch = patch, .in_channels = in_channels, .dim = 1536, .depth = 40,
                  .heads = 24, .ffn = ffn_kind::swiglu};
    return o.with_dinov2(registers);
  }
  /// These options with DINOv2's training additions: LayerScale initialised at 1e-5 in every block, a
  /// mask token for the iBOT patch loss, and `registers` register tokens (Darcet et al.: 4; 0: none).
  vit_options with_dinov2(int64_t register_tokens = 0) const {
    vit_options o = *this;
    o.layer_scale = 1e-5f;
    o.mask_token = true;
    o.registers = register_tokens;
    return o;
  }
  /// The number of values ssl::parameter_count gives a vit built from these options, without
  /// building it (ViT-g holds 1.1e9): patch embedding, [CLS], the position table (the frozen
  /// sin-cos one included), registers, mask token, the blocks and the final norm.
  int64_t parameter_count() const {
    const int64_t D = dim, g = image_size / patch;
    return (in_channels * patch * patch * D + D)  // patch_embed.proj
           + D                                     // cls_token
           + (g * g + 1) * D                       // pos_embed ([CLS] row included)
           + registers * D + (mask_token ? D : 0)  // register tokens, mask token
           + depth * block_options(0).parameter_count() + 2 * D;  // blocks, norm
  }
  /// The options of block i (stochastic depth grows linearly to drop_path at the last block).
  transformer_block_options block_options(int64_t i) const {
    const float dp = depth > 1 ? drop_path * float(i) / float(depth - 1) : drop_path;
    return {.dim = dim, .heads = heads, .mlp_ratio = mlp_ratio, .norm_eps = norm_eps, .drop_path = dp,
            .layer_scale = layer_scale, .ffn = ffn};
  }
};

template <class B = cpu>
class vit {
 public:
  using backend_type = B;
  using block_type = transformer_block<B>;
  struct saved_type {
    typename patch_embed<B>::saved_type patch;
    typename pos_embed<B>::saved_type pos;
    std::vector<int32_t> gather;  // rows of [CLS, patches] kept (empty: all)
    std::vector<uint8_t> hidden;  // patch_mask flags (N L) replaced by mask_token (empty: none)
    int64_t full_tokens = 0;      // 1 + L before the gather
    std::vector<typename block_type::saved_type> blocks;
    typename layer_norm<B>::saved_type norm;
    vit_pool pool = vit_pool::cls;
  };

  explicit vit(const vit_options& o = vit_options::tiny4(), rng gen = rng(0)) : opt_(check_options(o)) {
    patch_ = patch_embed<B>({.in_channels = o.in_channels, .patch = o.patch, .dim = o.dim}, gen.fork(0));
    cls_ = parameter<B>(shape{1, 1, o.dim}, param_kind::weight);
    rng cls_gen = gen.fork(1);
    init::trunc_normal(cls_.value, cls_gen, 0.02f);
    const int64_t g = o.image_size / o.patch;
    pos_ = pos_embed<B>({.grid_h = g, .grid_w = g, .dim = o.dim, .kind = o.pos}, gen.fork(2));
    for (int64_t i = 0; i < o.depth; ++i) blocks_.emplace_back(o.block_options(i), gen.fork(100 + uint64_t(i)));
    norm_ = layer_norm<B>(o.dim, o.norm_eps);
    pool_ = o.pool;
    if (o.mask_token) mask_ = parameter<B>(shape{1, o.dim}, param_kind::weight);  // zeros
    if (o.registers > 0) {
      reg_ = parameter<B>(shape{1, o.registers, o.dim}, param_kind::weight);
      rng reg_gen = gen.fork(3);
      init::trunc_normal(reg_.value, reg_gen, 1e-6f);
    }
  }

  const vit_options& options() const { return opt_; }
  int64_t feature_dim() const { return opt_.dim; }
  int64_t dim() const { return opt_.dim; }
  int64_t depth() const { return opt_.depth; }
  int64_t patch_size() const { return opt_.patch; }
  /// Patch tokens at the base resolution (49 for ViT-T/4).
  int64_t num_patches() const { return pos_.options().grid_h * pos_.options().grid_w; }
  vit_pool pool() const { return pool_; }

  /// Stochastic depth from now on: block i drops its branches with rate * i / (depth - 1), as
  /// vit_options::drop_path (e.g. 0.1 to fine-tune a pretrained encoder, as MAE does).
  void set_drop_path(float rate) {
    check<value_error>(rate >= 0.0f && rate < 1.0f, "vit::set_drop_path: expected a rate in [0, 1), got ", rate);
    const int64_t L = opt_.depth;
    for (int64_t i = 0; i < L; ++i) blocks_[size_t(i)].set_drop_path(L > 1 ? rate * float(i) / float(L - 1) : rate);
    opt_.drop_path = rate;
  }

  /// Layer ids for layer-wise lr decay (BEiT; MAE's and DINOv2's fine-tuning), depth + 2 of them:
  /// 0 the embeddings (patch_embed.*, cls_token, pos_embed, register_tokens, mask_token),
  /// 1 + i the block blocks.i.*, depth + 1 the final norm.*.
  int64_t layer_count() const { return opt_.depth + 2; }
  int64_t layer_of(const std::string& name) const {
    if (name == "cls_token" || name == "pos_embed" || (name == "mask_token" && opt_.mask_token) ||
        (name == "register_tokens" && opt_.registers > 0) || name.starts_with("patch_embed."))
      return 0;
    if (name.starts_with("norm.")) return opt_.depth + 1;
    if (name.starts_with("blocks.")) {
      const size_t dot = name.find('.', 7);
      int64_t i = -1;
      const char* first = name.data() + 7;
      const char* last = name.data() + (dot == std::string::npos ? name.size() : dot);
      const auto r = std::from_chars(first, last, i);
      if (r.ec == std::errc() && r.ptr == last && dot != std::string::npos && i >= 0 && i < opt_.depth) return 1 + i;
    }
    check<value_error>(false, "vit::layer_of: expected a parameter name of this ViT (patch_embed.*, cls_token, "
                              "pos_embed, blocks.<0..", opt_.depth - 1, ">.*, norm.*",
                       opt_.registers > 0 ? ", register_tokens" : "", opt_.mask_token ? ", mask_token" : "",
                       "), got '", name, "'");
    return -1;
  }
  /// Weights that fine-tuning exempts from weight decay (timm / MAE's no_weight_decay(): the
  /// learned tokens and position table, which weight decay would pull towards 0 with no loss term
  /// to resist it when labels are few), named as collect(out, "") names them.
  std::vector<std::string> no_weight_decay() const {
    std::vector<std::string> names{"cls_token", "pos_embed"};
    if (opt_.mask_token) names.push_back("mask_token");
    if (opt_.registers > 0) names.push_back("register_tokens");
    return names;
  }
  /// Which token(s) forward / infer return as the feature: [CLS] or the mean of the patch tokens.
  void set_pool(vit_pool p) { pool_ = p; }

  patch_embed<B>& patch() { return patch_; }
  pos_embed<B>& pos() { return pos_; }
  parameter<B>& cls_token() { return cls_; }
  bool has_mask_token() const { return opt_.mask_token; }
  /// Number of register tokens R (vit_options::registers).
  int64_t registers() const { return opt_.registers; }
  /// The learned register tokens (1, R, D).
  parameter<B>& register_tokens() {
    check<value_error>(opt_.registers > 0, "vit::register_tokens: this ViT was built without registers (vit_options::registers)");
    return reg_;
  }
  /// The learned token of hidden patches (vit_options::mask_token).
  parameter<B>& mask_token() {
    check<value_error>(opt_.mask_token, "vit::mask_token: this ViT was built without one (vit_options::mask_token)");
    return mask_;
  }
  block_type& block(int64_t i) { return blocks_.at(size_t(i)); }
  layer_norm<B>& norm() { return norm_; }

  // ---- tokens ---------------------------------------------------------------------------
  /// All output tokens after the final norm: (N, 1 + L, D), or (N, 1 + K, D) with a token_mask.
  /// `hide` (needs vit_options::mask_token) replaces its hidden patches' embeddings by mask_token
  /// before the position embedding; the sequence keeps all its tokens.
  output<saved_type, B> forward_tokens(const tensor<B>& x, const token_mask* mask = nullptr,
                                       const patch_mask* hide = nullptr) {
    check_input(x);
    output<saved_type, B> out;
    auto& s = out.saved;
    auto pe = patch_.forward(x);
    s.patch = std::move(pe.saved);
    const auto [gh, gw] = patch_.grid(x.dim(2), x.dim(3));
    if (hide) {
      check<value_error>(opt_.mask_token, "vit: a patch_mask needs a ViT built with vit_options::mask_token");
      check<shape_error>(hide->batch == x.dim(0) && hide->tokens == gh * gw &&
                             int64_t(hide->hidden.size()) == hide->batch * hide->tokens,
                         "vit: the patch mask is for ", hide->batch, " samples of ", hide->tokens,
                         " patches, the input has ", x.dim(0), " samples of ", gh * gw, " patches");
      s.hidden = hide->hidden;
      pe.y = ops::mask_tokens(pe.y, s.hidden, mask_.value);
    }
    tensor<B> seq = pos_.infer(ops::prepend_token(pe.y, cls_.value), gh, gw);
    s.pos = {gh, gw};
    s.full_tokens = 1 + gh * gw;
    if (mask) {
      s.gather = gather_rows(*mask, x.dim(0), gh * gw);
      seq = ops::gather_tokens(seq, s.gather, 1 + mask->kept);
    }
    seq = add_registers(std::move(seq));
    s.blocks.resize(blocks_.size());
    for (size_t i = 0; i < blocks_.size(); ++i) {
      auto b = blocks_[i].forward(seq);
      s.blocks[i] = std::move(b.saved);
      seq = std::move(b.y);
    }
    auto n = norm_.forward(drop_registers(std::move(seq)));
    s.norm = std::move(n.saved);
    out.y = std::move(n.y);
    return out;
  }

  /// Backward of forward_tokens: dtokens (shape of its output) -> dx (N, C, H, W); accumulates grads.
  tensor<B> backward_tokens(const saved_type& s, const tensor<B>& dtokens) {
    tensor<B> g = drop_registers_backward(norm_.backward(s.norm, dtokens));
    for (size_t i = blocks_.size(); i-- > 0;) g = blocks_[i].backward(s.blocks[i], g);
    g = add_registers_backward(std::move(g));  // [CLS; patches] from here
    if (!s.gather.empty()) g = ops::scatter_tokens(g, s.gather, s.full_tokens);
    g = pos_.backward(s.pos, g);
    const int64_t N = g.dim(0), T = g.dim(1), D = opt_.dim;
    if constexpr (std::same_as<B, cpu>) {
      tensor<B> dpatch(shape{N, T - 1, D});
      for (int64_t n = 0; n < N; ++n) {
        const float* src = g.data() + n * T * D;
        for (int64_t c = 0; c < D; ++c) cls_.grad[c] += src[c];
        std::copy_n(src + D, (T - 1) * D, dpatch.data() + n * (T - 1) * D);
      }
      if (!s.hidden.empty()) dpatch = ops::mask_tokens_backward(dpatch, s.hidden, mask_.grad);
      return patch_.backward(s.patch, dpatch);
    } else {  // dcls += sum_n g[n, 0]; the patch tokens' gradient is g[:, 1:]
      ops::sum_batch(ops::slice_tokens(g, 0, 1), cls_.grad);
      tensor<B> dpatch = ops::slice_tokens(g, 1, T - 1);
      if (!s.hidden.empty()) dpatch = ops::mask_tokens_backward(dpatch, s.hidden, mask_.grad);
      return patch_.backward(s.patch, dpatch);
    }
  }

  /// Inference on all (or the masked subset of) tokens. When `attn` is given, attn->at(i)
  /// receives block i's attention probabilities (N, H, T, T), T = 1 + R + (L or the kept patches).
  tensor<B> infer_tokens(const tensor<B>& x, const token_mask* mask = nullptr, std::vector<tensor<B>>* attn = nullptr) const {
    check_input(x);
    const auto [gh, gw] = patch_.grid(x.dim(2), x.dim(3));
    tensor<B> seq = pos_.infer(ops::prepend_token(patch_.infer(x), cls_.value), gh, gw);
    if (mask) seq = ops::gather_tokens(seq, gather_rows(*mask, x.dim(0), gh * gw), 1 + mask->kept);
    seq = add_registers(std::move(seq));
    if (attn) attn->assign(blocks_.size(), tensor<B>());
    for (size_t i = 0; i < blocks_.size(); ++i) seq = blocks_[i].infer(seq, attn ? &(*attn)[i] : nullptr);
    return norm_.infer(drop_registers(std::move(seq)));
  }

  /// Inference keeping the outputs of the last `k` blocks, before the final norm and without the
  /// registers: k tensors (N, 1 + L, D), block depth - k first (data2vec's targets: the average of
  /// the top blocks; probes on intermediate layers).
  std::vector<tensor<B>> infer_block_outputs(const tensor<B>& x, int64_t k) const {
    check<value_error>(k >= 1 && k <= opt_.depth, "vit::infer_block_outputs: expected 1 <= k <= depth ", opt_.depth,
                       ", got ", k);
    check_input(x);
    const auto [gh, gw] = patch_.grid(x.dim(2), x.dim(3));
    tensor<B> seq = add_registers(pos_.infer(ops::prepend_token(patch_.infer(x), cls_.value), gh, gw));
    std::vector<tensor<B>> outs;
    outs.reserve(size_t(k));
    for (int64_t i = 0; i < opt_.depth; ++i) {
      seq = blocks_[size_t(i)].infer(seq);
      if (i >= opt_.depth - k) outs.push_back(drop_registers(seq));
    }
    return outs;
  }

  /// Attention probabilities of block `layer` (negative counts from the end): (N, H, T, T) over the
  /// whole sequence [CLS, R registers, patches], T = 1 + R + L.
  tensor<B> attention(const tensor<B>& x, int64_t layer = -1) const {
    const int64_t L = layer < 0 ? opt_.depth + layer : layer;
    check<value_error>(L >= 0 && L < opt_.depth, "vit::attention: layer ", layer, " outside a depth of ", opt_.depth);
    check_input(x);
    const auto [gh, gw] = patch_.grid(x.dim(2), x.dim(3));
    tensor<B> seq = add_registers(pos_.infer(ops::prepend_token(patch_.infer(x), cls_.value), gh, gw));
    tensor<B> probs;
    for (int64_t i = 0; i <= L; ++i) seq = blocks_[size_t(i)].infer(seq, i == L ? &probs : nullptr);
    return probs;
  }
  /// The [CLS] query's attention in the last block over [CLS] and the L patches (registers left
  /// out; the row does not sum to 1 with registers): (N, H, 1 + L).
  tensor<B> cls_attention(const tensor<B>& x) const {
    tensor<B> p = attention(x, -1);
    const int64_t N = p.dim(0), H = p.dim(1), T = p.dim(2), R = opt_.registers;
    if constexpr (std::same_as<B, cpu>) {
      tensor<B> out(shape{N, H, T - R});
      for (int64_t nh = 0; nh < N * H; ++nh) {
        const float* row = p.data() + nh * T * T;
        float* o = out.data() + nh * (T - R);
        o[0] = row[0];
        std::copy_n(row + 1 + R, T - 1 - R, o + 1);
      }
      return out;
    } else {  // row 0 of each (T, T) map: p viewed as (N H, T, T) token rows, then columns 1..R dropped
      p.reshape(shape{N * H, T, T});
      tensor<B> out = ops::slice_tokens(p, 0, 1);
      out.reshape(shape{N * H, T, 1});
      if (R > 0) out = ops::remove_tokens(out, 1, R);
      out.reshape(shape{N, H, T - R});
      return out;
    }
  }

  // ---- registers, for code that runs the blocks itself (MaskFeat) --------------------------------
  /// [CLS; patches] (N, T, D) -> [CLS; registers; patches] (N, T + R, D); unchanged without registers.
  tensor<B> add_registers(tensor<B> seq) const {
    return opt_.registers > 0 ? ops::insert_tokens(seq, reg_.value, 1) : seq;
  }
  /// Backward of add_registers: dseq (N, T + R, D) -> (N, T, D); register_tokens().grad += the sum
  /// over the batch of the register rows.
  tensor<B> add_registers_backward(tensor<B> g) {
    if (opt_.registers == 0) return g;
    ops::sum_batch(ops::slice_tokens(g, 1, opt_.registers), reg_.grad);
    return ops::remove_tokens(g, 1, opt_.registers);
  }
  /// The register rows dropped (before the final norm: LayerNorm acts per token): (N, T + R, D) -> (N, T, D).
  tensor<B> drop_registers(tensor<B> seq) const {
    return opt_.registers > 0 ? ops::remove_tokens(seq, 1, opt_.registers) : seq;
  }
  /// Backward of drop_registers: zero gradient rows for the registers (they have no output).
  tensor<B> drop_registers_backward(tensor<B> g) const {
    return opt_.registers > 0 ? ops::insert_tokens(g, tensor<B>(shape{1, opt_.registers, opt_.dim}, 0.0f), 1) : g;
  }

  // ---- features (Encoder) -----------------------------------------------------------------
  output<saved_type, B> forward(const tensor<B>& x) {
    auto o = forward_tokens(x);
    o.saved.pool = pool_;
    return {pool_tokens(o.y, pool_), std::move(o.saved)};
  }
  tensor<B> backward(const saved_type& s, const tensor<B>& dy) {
    const int64_t N = dy.dim(0), D = opt_.dim, T = int64_t(s.gather.empty() ? s.full_tokens : s.gather.size() / N);
    expect_shape(dy, shape{N, D}, "vit::backward dy");
    if constexpr (std::same_as<B, cpu>) {
      tensor<B> dt(shape{N, T, D}, 0.0f);
      for (int64_t n = 0; n < N; ++n) {
        const float* g = dy.data() + n * D;
        float* r = dt.data() + n * T * D;
        if (s.pool == vit_pool::cls) {
          std::copy_n(g, D, r);
        } else {
          const float w = 1.0f / float(T - 1);
          for (int64_t t = 1; t < T; ++t)
            for (int64_t c = 0; c < D; ++c) r[t * D + c] = g[c] * w;
        }
      }
      return backward_tokens(s, dt);
    } else {
      return backward_tokens(s, pool_backward_device(dy, T, s.pool));
    }
  }
  tensor<B> infer(const tensor<B>& x) const { return pool_tokens(infer_tokens(x), pool_); }

  /// [CLS] output or mean of the patch outputs of a (N, T, D) token tensor -> (N, D).
  static tensor<B> pool_tokens(const tensor<B>& tokens, vit_pool p) {
    const int64_t N = tokens.dim(0), T = tokens.dim(1), D = tokens.dim(2);
    if constexpr (std::same_as<B, cpu>) {
      tensor<B> f(shape{N, D}, 0.0f);
      for (int64_t n = 0; n < N; ++n) {
        const float* r = tokens.data() + n * T * D;
        float* o = f.data() + n * D;
        if (p == vit_pool::cls) {
          std::copy_n(r, D, o);
        } else {
          for (int64_t t = 1; t < T; ++t)
            for (int64_t c = 0; c < D; ++c) o[c] += r[t * D + c];
          for (int64_t c = 0; c < D; ++c) o[c] /= float(T - 1);
        }
      }
      return f;
    } else {
      return pool_device(tokens, p);
    }
  }

  void collect(param_list<B>& out, const std::string& prefix) {
    out.push_back({join_name(prefix, "cls_token"), &cls_});
    if (opt_.mask_token) out.push_back({join_name(prefix, "mask_token"), &mask_});
    pos_.collect(out, prefix);
    if (opt_.registers > 0) out.push_back({join_name(prefix, "register_tokens"), &reg_});
    patch_.collect(out, join_name(prefix, "patch_embed"));
    for (size_t i = 0; i < blocks_.size(); ++i) blocks_[i].collect(out, join_name(prefix, "blocks." + std::to_string(i)));
    norm_.collect(out, join_name(prefix, "norm"));
  }

 private:
  static const vit_options& check_options(const vit_options& o) {
    check<value_error>(o.patch > 0 && o.image_size > 0 && o.image_size % o.patch == 0,
                       "vit: expected image_size a positive multiple of patch, got image_size ", o.image_size,
                       ", patch ", o.patch);
    check<value_error>(o.dim > 0 && o.depth > 0 && o.heads > 0 && o.dim % o.heads == 0,
                       "vit: expected dim divisible by heads and depth > 0, got dim ", o.dim, ", heads ", o.heads,
                       ", depth ", o.depth);
    check<value_error>(o.registers >= 0, "vit: expected registers >= 0, got ", o.registers);
    check<value_error>(o.layer_scale >= 0.0f, "vit: expected layer_scale >= 0 (0: none), got ", o.layer_scale);
    return o;
  }
  void check_input(const tensor<B>& x) const {
    check<shape_error>(x.rank() == 4 && x.dim(1) == opt_.in_channels && x.dim(2) % opt_.patch == 0 &&
                           x.dim(3) % opt_.patch == 0 && x.dim(2) > 0 && x.dim(3) > 0,
                       "vit: expected images (N, ", opt_.in_channels, ", H, W) with H, W multiples of ", opt_.patch,
                       ", got ", x.shape());
  }
  /// pool_tokens on the device: the [CLS] rows, or per sample f[n] = 1^T tokens[n, 1:] / (T - 1),
  /// one strided-batched GEMM against a ones vector (batch stride 0).
  static tensor<B> pool_device(const tensor<B>& tokens, vit_pool p) {
    const int64_t N = tokens.dim(0), T = tokens.dim(1), D = tokens.dim(2);
    if (p == vit_pool::cls) {
      tensor<B> f = ops::slice_tokens(tokens, 0, 1);
      f.reshape(shape{N, D});
      return f;
    }
    tensor<B> f(shape{N, D}, 0.0f);
    const tensor<B> ones(shape{T - 1}, 1.0f);
#if defined(__CUDACC__)  // (1, T-1) x (T-1, D) per sample
    ops::gemm_strided_batched(B{}, ops::trans::no, ops::trans::no, 1, D, T - 1, 1.0f / float(T - 1), ones.data(), T - 1,
                              0, tokens.data() + D, D, T * D, 0.0f, f.data(), D, D, N);
#endif
    return f;
  }
  /// Adjoint of pool_device: dy (N, D) -> dtokens (N, T, D) (dy at [CLS], or dy / (T - 1) at every patch).
  static tensor<B> pool_backward_device(const tensor<B>& dy, int64_t T, vit_pool p) {
    const int64_t N = dy.dim(0), D = dy.dim(1);
    if (p == vit_pool::cls) {
      tensor<B> g = dy;
      g.reshape(shape{N, 1, D});
      return ops::unslice_tokens(g, T, 0);
    }
    tensor<B> dt(shape{N, T, D}, 0.0f);
    const tensor<B> ones(shape{T - 1}, 1.0f);
#if defined(__CUDACC__)  // (T-1, 1) x (1, D) per sample, into rows 1.. of each sample
    ops::gemm_strided_batched(B{}, ops::trans::no, ops::trans::no, T - 1, D, 1, 1.0f / float(T - 1), ones.data(), 1, 0,
                              dy.data(), D, D, 0.0f, dt.data() + D, D, T * D, N);
#endif
    return dt;
  }

  /// Row indices into [CLS, patches]: 0 then 1 + keep, per sample.
  static std::vector<int32_t> gather_rows(const token_mask& m, int64_t N, int64_t L) {
    check<shape_error>(m.batch == N && m.tokens == L, "vit: the token mask is for ", m.batch, " samples of ", m.tokens,
                       " patches, the input has ", N, " samples of ", L, " patches");
    std::vector<int32_t> rows(size_t(N * (1 + m.kept)));
    for (int64_t n = 0; n < N; ++n) {
      rows[size_t(n * (1 + m.kept))] = 0;
      for (int64_t k = 0; k < m.kept; ++k) rows[size_t(n * (1 + m.kept) + 1 + k)] = 1 + m.keep[size_t(n * m.kept + k)];
    }
    return rows;
  }

  vit_options opt_;
  patch_embed<B> patch_;
  parameter<B> cls_;
  parameter<B> mask_;  // (1, D) with vit_options::mask_token, else empty
  parameter<B> reg_;   // (1, R, D) with vit_options::registers = R > 0, else empty
  pos_embed<B> pos_;
  std::vector<block_type> blocks_;
  layer_norm<B> norm_;
  vit_pool pool_ = vit_pool::cls;
};

}  // namespace ssl
