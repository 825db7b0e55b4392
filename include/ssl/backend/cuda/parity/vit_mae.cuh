#pragma once
// Workload W2 of shared/WORKLOADS.md (MAE training step) written once over the ops:: overload sets,
// templated on the backend B:  vit_mae<cpu> a(seed);  vit_mae<cuda> b(seed);  a.step(x, m); b.step(x, m)
//   mask:    37 of 49 patches hidden per sample (keep K = int(49 * 0.25) = 12), given by the caller or
//            drawn on the host from the seed (ssl::random_token_mask, the library's MAE masking)
//   encoder: ViT-T/4 (vit_tiny.cuh) on [CLS] + the 12 visible tokens (pos added before the gather)
//   decoder: Linear(192,128) -> unshuffle with the mask token -> + learned pos (1,50,128) ->
//            2 pre-norm blocks (dim 128, 4 heads, MLP 512) -> LN -> drop [CLS] -> Linear(128,16)
//   loss:    norm-pix MSE over the masked patches (ssl::masked_reconstruction on the CPU,
//            ops::masked_reconstruction_loss on the GPU)
//   AdamW lr 1.5e-4, betas (0.9, 0.95), eps 1e-8, weight decay 0.05 on every parameter
//            (ssl::adamw on the CPU, ops::adamw_update on the GPU).
// Parameter names are those of ssl::mae<vit<>, mae_decoder<>>::collect, in the same order.
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "../../../losses/masked_reconstruction.hpp"
#include "../../../nn/patch_embed.hpp"  // token_mask, random_token_mask
#include "../../../optim/adamw.hpp"
#include "../masked_reconstruction.cuh"
#include "../optim.cuh"
#include "vit_tiny.cuh"

namespace ssl::parity {

inline constexpr float w2_lr = 1.5e-4f, w2_beta1 = 0.9f, w2_beta2 = 0.95f, w2_eps = 1e-8f, w2_weight_decay = 0.05f;
inline constexpr float w2_mask_ratio = 0.75f;

template <class B>
class vit_mae {
 public:
  static constexpr int64_t patches = vit_tiny<B>::base_tokens, patch_dim = vit_tiny<B>::patch_dim;
  static constexpr int64_t dec_dim = 128, dec_depth = 2, dec_heads = 4, dec_hidden = 512;

  /// Parameters drawn on the host from `seed` (ViT init rules), then moved to B: two instances
  /// with the same seed hold identical values. Masks of step(x) are drawn from the same seed.
  explicit vit_mae(uint64_t seed) : seed_(seed) {
    host_init init{rng(seed)};
    encoder_ = vit_tiny<B>(store_, "encoder.", init);
    const int64_t enc = vit_tiny<B>::dim;
    embed_w_ = &store_.add("decoder.embed.weight", init.trunc_normal(shape{dec_dim, enc}));
    embed_b_ = &store_.add("decoder.embed.bias", host_init::constant(shape{dec_dim}, 0.0f));
    mask_token_ = &store_.add("decoder.mask_token", init.trunc_normal(shape{1, 1, dec_dim}));
    dec_pos_ = &store_.add("decoder.pos_embed", init.trunc_normal(shape{1, 1 + patches, dec_dim}));
    decoder_ = vit_stack<B>(store_, "decoder.", dec_depth, dec_dim, dec_heads, dec_hidden, init);
    pred_w_ = &store_.add("decoder.pred.weight", init.trunc_normal(shape{patch_dim, dec_dim}));
    pred_b_ = &store_.add("decoder.pred.bias", host_init::constant(shape{patch_dim}, 0.0f));
    if constexpr (std::is_same_v<B, cpu>) {
      optimizer_ = std::make_unique<adamw<cpu>>(store_.list(), adamw_options{w2_lr, w2_beta1, w2_beta2, w2_eps,
                                                                        w2_weight_decay});
    } else {
      for (int64_t i = 0; i < store_.size(); ++i) {
        exp_avg_.push_back(zeros<B>(store_.at(i).value.shape()));
        exp_avg_sq_.push_back(zeros<B>(store_.at(i).value.shape()));
      }
    }
  }

  param_store<B>& params() { return store_; }

  /// The mask of step `step` for n images (the host draws it: per-sample argsort of uniform noise).
  token_mask mask_for_step(int64_t n, int64_t step) const {
    return random_token_mask(n, patches, w2_mask_ratio, rng(seed_, 0x57324d).fork(uint64_t(step)));
  }

  /// Forward + loss + backward with mask m: zeroes the gradients first, leaves them in params().
  /// x: (N, 1, 28, 28). Returns the loss (host float on the CPU, 1-element device tensor on the GPU).
  auto forward_backward(const tensor<B>& x, const token_mask& m) {
    check<shape_error>(x.rank() == 4 && x.dim(1) == 1 && x.dim(2) == 28 && x.dim(3) == 28,
                       "vit_mae: expected images (N, 1, 28, 28), got ", x.shape());
    const int64_t N = x.dim(0), K = m.kept;
    check<shape_error>(m.batch == N && m.tokens == patches, "vit_mae: the mask is for ", m.batch, " samples of ",
                       m.tokens, " patches, expected ", N, " of ", patches);
    store_.zero_grad();
    // ---- encoder on [CLS] + visible tokens
    std::vector<int32_t> rows(size_t(N * (1 + K)));
    for (int64_t n = 0; n < N; ++n) {
      rows[size_t(n * (1 + K))] = 0;
      for (int64_t k = 0; k < K; ++k) rows[size_t(n * (1 + K) + 1 + k)] = 1 + m.keep[size_t(n * K + k)];
    }
    vit_saved<B> enc_saved;
    const tensor<B> latent = encoder_.forward(x, enc_saved, &rows, 1 + K);  // (N, 1 + K, 192)
    // ---- decoder
    const tensor<B> e = ops::linear_forward(latent, embed_w_->value, &embed_b_->value);  // (N, 1 + K, 128)
    const tensor<B> full = ops::add_rows(ops::unshuffle_tokens(e, m.restore, K, mask_token_->value), dec_pos_->value);
    vit_stack_saved<B> dec_saved;
    const tensor<B> dec_out = decoder_.forward(full, dec_saved);  // (N, 1 + L, 128)
    const tensor<B> dec_patches = ops::slice_tokens(dec_out, 1, patches);
    const tensor<B> pred = ops::linear_forward(dec_patches, pred_w_->value, &pred_b_->value);  // (N, L, 16)
    // ---- loss
    loss_grad r = loss_and_grad(pred, ops::patchify(x, vit_tiny<B>::patch), m.mask);
    // ---- backward
    const tensor<B> ddec = ops::linear_backward(dec_patches, pred_w_->value, r.grad, pred_w_->grad, &pred_b_->grad);
    const tensor<B> g = decoder_.backward(dec_saved, ops::unslice_tokens(ddec, 1 + patches, 1));
    ops::sum_batch(g, dec_pos_->grad);
    const tensor<B> de = ops::unshuffle_tokens_backward(g, m.restore, K, mask_token_->grad);
    const tensor<B> dlatent = ops::linear_backward(latent, embed_w_->value, de, embed_w_->grad, &embed_b_->grad);
    encoder_.backward(enc_saved, dlatent);
    return std::move(r.value);
  }

  /// AdamW on every parameter.
  void update() {
    ++steps_;
    if constexpr (std::is_same_v<B, cpu>) {
      optimizer_->step();
    } else {
      for (int64_t i = 0; i < store_.size(); ++i)
        ops::adamw_update(store_.at(i).value, store_.at(i).grad, exp_avg_[size_t(i)], exp_avg_sq_[size_t(i)], steps_,
                          w2_lr, w2_beta1, w2_beta2, w2_eps, w2_weight_decay);
    }
  }

  /// One training step with mask m; returns the loss.
  auto step(const tensor<B>& x, const token_mask& m) {
    auto loss = forward_backward(x, m);
    update();
    return loss;
  }
  /// One training step with the mask drawn on the host for this step.
  auto step(const tensor<B>& x) { return step(x, mask_for_step(x.dim(0), steps_)); }

  int64_t step_count() const { return steps_; }

 private:
  struct loss_grad {
    std::conditional_t<std::is_same_v<B, cpu>, float, tensor<cuda>> value;
    tensor<B> grad;
  };
  static loss_grad loss_and_grad(const tensor<B>& pred, const tensor<B>& target, const tensor<cpu>& mask) {
    if constexpr (std::is_same_v<B, cpu>) {
      masked_reconstruction_result r = masked_reconstruction(true)(pred, target, mask);
      return {r.value, std::move(r.grad_pred)};
    } else {
      ops::masked_reconstruction_device_result r = ops::masked_reconstruction_loss(pred, target, mask, true);
      return {std::move(r.value), std::move(r.grad_pred)};
    }
  }

  uint64_t seed_ = 0;
  int64_t steps_ = 0;
  param_store<B> store_;
  vit_tiny<B> encoder_;
  parameter<B>*embed_w_ = nullptr, *embed_b_ = nullptr, *mask_token_ = nullptr, *dec_pos_ = nullptr,
  *pred_w_ = nullptr, *pred_b_ = nullptr;
  vit_stack<B> decoder_;
  std::vector<tensor<B>> exp_avg_, exp_avg_sq_;  // GPU only
  std::unique_ptr<adamw<cpu>> optimizer_;            // CPU only
};

}  // namespace ssl::parity
