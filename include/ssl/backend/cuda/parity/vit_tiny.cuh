#pragma once
// The ViT pieces of workloads W2 / W3 (shared/WORKLOADS.md) written once over the ops:: overload
// sets, templated on the backend B (cpu or cuda), so switching is one template argument:
//   param_store<B>        named parameters (PyTorch names), created from host tensors and moved to B
//   vit_block<B>          pre-norm block: x1 = x + proj(attn(LN1 x)), y = x1 + fc2(gelu(fc1(LN2 x1)))
//   vit_tiny<B>           ViT-T/4: patchify -> Linear(16,192) -> [CLS; tokens] + pos -> (gather) ->
//                         6 blocks (dim 192, 3 heads, MLP 768) -> final LN (eps 1e-6); 12x12 crops (3x3
//                         tokens) use the 7x7 pos table resized by a fixed bicubic (9 x 49) matrix (GEMM)
// Activations belong to the call: forward returns a saved struct, backward takes it back and
// accumulates (+=) parameter gradients. Parameter names and order follow ssl::vit::collect.
#include <algorithm>
#include <cmath>
#include <deque>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../../../core/rng.hpp"
#include "../../../nn/module.hpp"
#include "../../cpu/pos_embed.hpp"
#include "../attention.cuh"
#include "../buffer.cuh"
#include "../elementwise.cuh"
#include "../gemm.cuh"
#include "../layer_norm.cuh"
#include "../linear.cuh"
#include "../tokens.cuh"
#include "../vit_ops.cuh"

namespace ssl::parity {

// ---- backend helpers ---------------------------------------------------------------------------
// (host -> B copies: ssl::to_backend<B>, tensor/tensor.hpp)
template <class B>
inline void set_zero(tensor<B>& t) {
  if constexpr (std::is_same_v<B, cpu>)
    t.zero();
  else
    ops::zero(t);
}
template <class B>
inline tensor<B> zeros(const shape& s) {
  if constexpr (std::is_same_v<B, cpu>)
    return tensor<cpu>(s, 0.0f);
  else
    return ops::full(s, 0.0f);
}
/// C (M, N) = alpha op(A) op(B) + beta C, row-major raw pointers on backend B.
template <class B>
inline void gemm_on(ops::trans ta, ops::trans tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                    int64_t lda, const float* Bm, int64_t ldb, float beta, float* C, int64_t ldc) {
  ops::gemm(B{}, ta, tb, M, N, K, alpha, A, lda, Bm, ldb, beta, C, ldc);
}
/// The host copy of a tensor of either backend.
template <class B>
inline tensor<cpu> host_copy(const tensor<B>& t) {
  if constexpr (std::is_same_v<B, cpu>)
    return t;
  else
    return to_host(t);
}

// ---- parameters ----------------------------------------------------------------------------------
/// Named parameters on B in creation order (a deque: references stay valid as it grows).
template <class B>
class param_store {
 public:
  parameter<B>& add(const std::string& name, const tensor<cpu>& value) {
    parameter<B>& p = params_.emplace_back();
    p.value = to_backend<B>(value);
    p.grad = zeros<B>(value.shape());
    names_.push_back(name);
    return p;
  }
  int64_t size() const { return int64_t(params_.size()); }
  parameter<B>& at(int64_t i) { return params_.at(size_t(i)); }
  const std::string& name(int64_t i) const { return names_.at(size_t(i)); }
  /// Index of `name`, or -1.
  int64_t find(const std::string& name) const {
    for (size_t i = 0; i < names_.size(); ++i)
      if (names_[i] == name) return int64_t(i);
    return -1;
  }
  /// Sets the value of parameter `name` from a host tensor of the same shape.
  void set_value(const std::string& name, const tensor<cpu>& v) {
    const int64_t i = find(name);
    check<value_error>(i >= 0, "param_store::set_value: no parameter named '", name, "'");
    expect_shape(v, params_[size_t(i)].value.shape(), ("param_store::set_value " + name).c_str());
    params_[size_t(i)].value = to_backend<B>(v);
  }
  void zero_grad() {
    for (auto& p : params_) set_zero(p.grad);
  }
  param_list<B> list() {
    param_list<B> out;
    for (size_t i = 0; i < params_.size(); ++i) out.push_back({names_[i], &params_[i]});
    return out;
  }

 private:
  std::deque<parameter<B>> params_;
  std::vector<std::string> names_;
};

/// Host initial values: trunc_normal(std) as normal clipped to +-2 std, xavier uniform, constants.
struct host_init {
  rng gen;
  tensor<cpu> trunc_normal(const shape& s, float std = 0.02f) {
    tensor<cpu> t(s);
    for (int64_t i = 0; i < t.numel(); ++i) t[i] = std::clamp(gen.normal(0.0f, std), -2.0f * std, 2.0f * std);
    return t;
  }
  tensor<cpu> xavier(int64_t out, int64_t in) {
    const float a = std::sqrt(6.0f / float(in + out));
    tensor<cpu> t(shape{out, in});
    for (int64_t i = 0; i < t.numel(); ++i) t[i] = gen.uniform(-a, a);
    return t;
  }
  static tensor<cpu> constant(const shape& s, float v) { return tensor<cpu>(s, v); }
};

// ---- pre-norm transformer block -------------------------------------------------------------------
template <class B>
struct vit_block_saved {
  tensor<B> xhat1, rstd1, ln1, qkv, probs, heads, x1, xhat2, rstd2, ln2, hidden, act;
};

template <class B>
class vit_block {
 public:
  vit_block() = default;
  /// Registers norm1.*, attn.qkv.*, attn.proj.*, norm2.*, mlp.fc1.*, mlp.fc2.* under `prefix`.
  vit_block(param_store<B>& store, const std::string& prefix, int64_t dim, int64_t heads, int64_t hidden,
            host_init& init)
      : heads_(heads), scale_(1.0f / std::sqrt(float(dim / heads))) {
    auto c = [](const shape& s, float v) { return host_init::constant(s, v); };
    n1w_ = &store.add(prefix + ".norm1.weight", c(shape{dim}, 1.0f));
    n1b_ = &store.add(prefix + ".norm1.bias", c(shape{dim}, 0.0f));
    qkvw_ = &store.add(prefix + ".attn.qkv.weight", init.trunc_normal(shape{3 * dim, dim}));
    qkvb_ = &store.add(prefix + ".attn.qkv.bias", c(shape{3 * dim}, 0.0f));
    projw_ = &store.add(prefix + ".attn.proj.weight", init.trunc_normal(shape{dim, dim}));
    projb_ = &store.add(prefix + ".attn.proj.bias", c(shape{dim}, 0.0f));
    n2w_ = &store.add(prefix + ".norm2.weight", c(shape{dim}, 1.0f));
    n2b_ = &store.add(prefix + ".norm2.bias", c(shape{dim}, 0.0f));
    fc1w_ = &store.add(prefix + ".mlp.fc1.weight", init.trunc_normal(shape{hidden, dim}));
    fc1b_ = &store.add(prefix + ".mlp.fc1.bias", c(shape{hidden}, 0.0f));
    fc2w_ = &store.add(prefix + ".mlp.fc2.weight", init.trunc_normal(shape{dim, hidden}));
    fc2b_ = &store.add(prefix + ".mlp.fc2.bias", c(shape{dim}, 0.0f));
  }

  /// x (N, T, D) -> y (N, T, D); s receives what backward needs.
  tensor<B> forward(const tensor<B>& x, vit_block_saved<B>& s) const {
    s.ln1 = ops::layer_norm_forward(x, n1w_->value, n1b_->value, eps, &s.xhat1, &s.rstd1);
    s.qkv = ops::linear_forward(s.ln1, qkvw_->value, &qkvb_->value);
    s.heads = ops::attention_forward(s.qkv, heads_, scale_, &s.probs);
    s.x1 = ops::residual_add(x, ops::linear_forward(s.heads, projw_->value, &projb_->value));
    s.ln2 = ops::layer_norm_forward(s.x1, n2w_->value, n2b_->value, eps, &s.xhat2, &s.rstd2);
    s.hidden = ops::linear_forward(s.ln2, fc1w_->value, &fc1b_->value);
    s.act = ops::gelu_forward(s.hidden);
    return ops::residual_add(s.x1, ops::linear_forward(s.act, fc2w_->value, &fc2b_->value));
  }

  /// dy -> dx; accumulates the parameter gradients.
  tensor<B> backward(const vit_block_saved<B>& s, const tensor<B>& dy) const {
    tensor<B> g = ops::linear_backward(s.act, fc2w_->value, dy, fc2w_->grad, &fc2b_->grad);
    g = ops::gelu_backward(s.hidden, g);
    g = ops::linear_backward(s.ln2, fc1w_->value, g, fc1w_->grad, &fc1b_->grad);
    const tensor<B> dx1 = ops::residual_add(dy, ops::layer_norm_backward(s.xhat2, s.rstd2, n2w_->value, g, n2w_->grad,
                                                                         n2b_->grad));
    g = ops::linear_backward(s.heads, projw_->value, dx1, projw_->grad, &projb_->grad);
    g = ops::attention_backward(s.qkv, s.probs, heads_, scale_, g);
    g = ops::linear_backward(s.ln1, qkvw_->value, g, qkvw_->grad, &qkvb_->grad);
    return ops::residual_add(dx1, ops::layer_norm_backward(s.xhat1, s.rstd1, n1w_->value, g, n1w_->grad, n1b_->grad));
  }

  static constexpr float eps = 1e-6f;

 private:
  int64_t heads_ = 1;
  float scale_ = 1.0f;
  parameter<B>*n1w_ = nullptr, *n1b_ = nullptr, *qkvw_ = nullptr, *qkvb_ = nullptr, *projw_ = nullptr,
  *projb_ = nullptr, *n2w_ = nullptr, *n2b_ = nullptr, *fc1w_ = nullptr, *fc1b_ = nullptr, *fc2w_ = nullptr,
  *fc2b_ = nullptr;
};

/// A stack of blocks then a final LayerNorm: the shared tail of the encoder and the MAE decoder.
template <class B>
struct vit_stack_saved {
  std::vector<vit_block_saved<B>> blocks;
  tensor<B> xhat, rstd;
};

template <class B>
class vit_stack {
 public:
  vit_stack() = default;
  /// blocks "<prefix>blocks.<i>.*" and "<prefix>norm.*" (prefix empty or ending in '.').
  vit_stack(param_store<B>& store, const std::string& prefix, int64_t depth, int64_t dim, int64_t heads,
            int64_t hidden, host_init& init) {
    for (int64_t i = 0; i < depth; ++i)
      blocks_.emplace_back(store, prefix + "blocks." + std::to_string(i), dim, heads, hidden, init);
    norm_w_ = &store.add(prefix + "norm.weight", host_init::constant(shape{dim}, 1.0f));
    norm_b_ = &store.add(prefix + "norm.bias", host_init::constant(shape{dim}, 0.0f));
  }
  tensor<B> forward(tensor<B> x, vit_stack_saved<B>& s) const {
    s.blocks.resize(blocks_.size());
    for (size_t i = 0; i < blocks_.size(); ++i) x = blocks_[i].forward(x, s.blocks[i]);
    return ops::layer_norm_forward(x, norm_w_->value, norm_b_->value, vit_block<B>::eps, &s.xhat, &s.rstd);
  }
  tensor<B> backward(const vit_stack_saved<B>& s, const tensor<B>& dy) const {
    tensor<B> g = ops::layer_norm_backward(s.xhat, s.rstd, norm_w_->value, dy, norm_w_->grad, norm_b_->grad);
    for (size_t i = blocks_.size(); i-- > 0;) g = blocks_[i].backward(s.blocks[i], g);
    return g;
  }

 private:
  std::vector<vit_block<B>> blocks_;
  parameter<B>*norm_w_ = nullptr, *norm_b_ = nullptr;
};

// ---- ViT-T/4 ---------------------------------------------------------------------------------------
template <class B>
struct vit_saved {
  tensor<B> patches;              // (N, L, 16): the input of the patch projection
  int64_t grid = 0;               // tokens per side (7 or 3)
  std::vector<int32_t> gather;    // rows of [CLS, patches] kept (empty: all)
  vit_stack_saved<B> stack;
};

template <class B>
class vit_tiny {
 public:
  static constexpr int64_t dim = 192, depth = 6, heads = 3, hidden = 768, patch = 4, base_grid = 7;
  static constexpr int64_t patch_dim = patch * patch, base_tokens = base_grid * base_grid;

  vit_tiny() = default;
  /// Registers cls_token, pos_embed, patch_embed.proj.*, blocks.*, norm.* under `prefix` (ssl::vit's order).
  vit_tiny(param_store<B>& store, const std::string& prefix, host_init& init) {
    cls_ = &store.add(prefix + "cls_token", init.trunc_normal(shape{1, 1, dim}));
    pos_ = &store.add(prefix + "pos_embed", init.trunc_normal(shape{1, 1 + base_tokens, dim}));
    patch_w_ = &store.add(prefix + "patch_embed.proj.weight", init.xavier(dim, patch_dim));
    patch_b_ = &store.add(prefix + "patch_embed.proj.bias", host_init::constant(shape{dim}, 0.0f));
    stack_ = vit_stack<B>(store, prefix, depth, dim, heads, hidden, init);
  }

  /// x (N, 1, H, W), H = W = 4 g -> tokens (N, 1 + g^2, D), or (N, K, D) with `gather` (N K rows of
  /// [CLS, patches] per sample, MAE: 0 then 1 + keep). pos is added before the gather.
  tensor<B> forward(const tensor<B>& x, vit_saved<B>& s, const std::vector<int32_t>* gather = nullptr,
                    int64_t gathered = 0) const {
    check<shape_error>(x.rank() == 4 && x.dim(1) == 1 && x.dim(2) == x.dim(3) && x.dim(2) % patch == 0 && x.dim(2) > 0,
                       "vit_tiny: expected square images (N, 1, 4 g, 4 g), got ", x.shape());
    s.grid = x.dim(2) / patch;
    s.patches = ops::patchify(x, patch);
    tensor<B> seq = ops::prepend_token(ops::linear_forward(s.patches, patch_w_->value, &patch_b_->value), cls_->value);
    seq = ops::add_rows(seq, s.grid == base_grid ? pos_->value : resized_pos(s.grid));
    s.gather.clear();
    if (gather) {
      s.gather = *gather;
      seq = ops::gather_tokens(seq, s.gather, gathered);
    }
    return stack_.forward(std::move(seq), s.stack);
  }

  /// dtokens (shape of forward's output) -> accumulates all gradients (the image gets none).
  void backward(const vit_saved<B>& s, const tensor<B>& dtokens) const {
    tensor<B> g = stack_.backward(s.stack, dtokens);
    const int64_t L = s.grid * s.grid, T = 1 + L;
    if (!s.gather.empty()) g = ops::scatter_tokens(g, s.gather, T);
    // sum over the batch of the token gradients: the gradient of the pos rows (and of CLS, row 0)
    tensor<B> rows = zeros<B>(shape{T, dim});
    ops::sum_batch(g, rows);
    ops::add_range(cls_->grad, 0, rows, 0, dim);
    if (s.grid == base_grid) {
      ops::add_range(pos_->grad, 0, rows, 0, T * dim);
    } else {  // pos rows = [pos_cls; R pos_grid]: dpos_cls += rows[0], dpos_grid += R^T rows[1:]
      ops::add_range(pos_->grad, 0, rows, 0, dim);
      gemm_on<B>(ops::trans::yes, ops::trans::no, base_tokens, dim, L, 1.0f, resize_matrix(s.grid).data(),
                 base_tokens, rows.data() + dim, dim, 1.0f, pos_->grad.data() + dim, dim);
    }
    const tensor<B> dtok = ops::slice_tokens(g, 1, L);
    (void)ops::linear_backward(s.patches, patch_w_->value, dtok, patch_w_->grad, &patch_b_->grad);
  }

  /// The (g^2, 49) bicubic resize matrix of the 7x7 grid to g x g (Kronecker product of the 1-D
  /// matrices of PyTorch's interpolate(mode="bicubic", align_corners=False)), on B, cached.
  const tensor<B>& resize_matrix(int64_t g) const {
    for (auto& [side, m] : resize_cache_)
      if (side == g) return m;
    const std::vector<float> r = ops::bicubic_matrix(base_grid, g);  // (g, 7)
    tensor<cpu> m(shape{g * g, base_tokens});
    for (int64_t i = 0; i < g; ++i)
      for (int64_t j = 0; j < g; ++j)
        for (int64_t a = 0; a < base_grid; ++a)
          for (int64_t b = 0; b < base_grid; ++b)
            m[(i * g + j) * base_tokens + a * base_grid + b] = r[size_t(i * base_grid + a)] * r[size_t(j * base_grid + b)];
    resize_cache_.emplace_back(g, to_backend<B>(m));
    return resize_cache_.back().second;
  }

 private:
  /// [pos_cls; R pos_grid]: (1 + g^2, D).
  tensor<B> resized_pos(int64_t g) const {
    const int64_t L = g * g;
    tensor<B> rows = zeros<B>(shape{1 + L, dim});
    ops::add_range(rows, 0, pos_->value, 0, dim);
    gemm_on<B>(ops::trans::no, ops::trans::no, L, dim, base_tokens, 1.0f, resize_matrix(g).data(), base_tokens,
               pos_->value.data() + dim, dim, 0.0f, rows.data() + dim, dim);
    return rows;
  }

  parameter<B>*cls_ = nullptr, *pos_ = nullptr, *patch_w_ = nullptr, *patch_b_ = nullptr;
  vit_stack<B> stack_;
  mutable std::deque<std::pair<int64_t, tensor<B>>> resize_cache_;
};

}  // namespace ssl::parity
