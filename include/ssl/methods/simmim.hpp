#pragma once
// SimMIM (Xie et al. 2022, "SimMIM: a Simple Framework for Masked Image Modeling"): the encoder sees
// every patch, the masked ones replaced by a learned mask token, and a linear head regresses the
// raw pixels of the masked patches with an L1 loss. One view per image.
//   mask  = unit_mask(N, gh, gw, {unit, ratio}, rng(seed).fork(step))   (N, L) hidden patches,
//           ceil(U ratio) random units of unit x unit patches (SimMIM's "mask patch")
//   tok   = encoder.forward_tokens(x, hide = mask)    (N, 1 + L, D): masked patch embeddings <- the
//           ViT's mask token before the position embedding, all tokens through every block
//   pred  = Linear(D, C p p)(tok[:, 1:])              (N, L, C p p)   (the official 1x1 conv to
//           C p^2 channels followed by PixelShuffle(p): the same map, patch by patch)
//   L     = masked_reconstruction::l1(pred, patchify(x), mask)
//         = sum over masked pixels of |x_rec - x| / (masked pixels x C)   (the official loss)
// Defaults (official ViT-B config, simmim_pretrain__vit_base__img224__800ep): mask ratio 0.6, mask
// patch 32 px on 16 px patches (unit 2), raw pixel targets of the input as normalised; the mask token
// trunc_normal(0.02). norm_pix = true normalises each target patch (MAE's norm_pix_loss; SimMIM v2 /
// Swin V2's "normalised target"). Deviations (docs/methods/simmim.md): a mask unit that does not
// divide the grid is cut at the edge (28 x 28 images, 4 px patches: 4 x 4 units of 2 x 2 patches,
// the last row / column one patch wide); the ViT has absolute positions, no relative bias / LayerScale
// by default.
// Data-parallel: every replica draws the global batch's masks (host, cheap) and divides by the
// global masked count / W, so W replicas average to one process on the global batch exactly, though
// images hide different numbers of patches (the official DDP averages per-replica means).
// The encoder is any ViT-like type with forward_tokens(x, token_mask*, patch_mask*) / backward_tokens
// and a mask token (ssl::vit built with vit_options::mask_token). The backend is the encoder's
// backend tag: simmim<vit<cuda>> runs the same step on the GPU (under nvcc); masks stay on the host.
#include <concepts>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../backend/cpu/patch_embed.hpp"
#include "../backend/cpu/vit_ops.hpp"
#include "../encoders/vit.hpp"
#include "../losses/masked_reconstruction.hpp"
#include "../nn/init.hpp"
#include "../nn/linear.hpp"
#include "../pretext/unit_mask.hpp"
#include "detail/replica_place.hpp"
#include "method.hpp"
#if defined(__CUDACC__)
#include "../backend/cuda/tokens.cuh"   // ops::patchify / prepend_token on tensor<cuda>
#include "../backend/cuda/vit_ops.cuh"  // ops::slice_tokens on tensor<cuda>
#endif

namespace ssl {

struct simmim_options {
  float mask_ratio = 0.6f;       // fraction of the mask units hidden (rounded up)
  int64_t mask_unit = 2;         // mask unit side in ViT patches (official: 32 px mask patch / 16 px patch)
  bool norm_pix = false;         // per-patch normalised targets instead of the pixels as given
  float mask_token_std = 0.02f;  // trunc_normal std of the mask token at construction (0: keep the ViT's)
  uint64_t seed = 0;
};

template <class E = vit<>>
class simmim {
  static_assert(Encoder<E>, "simmim<E>: E must satisfy ssl::Encoder");
  static_assert(requires(E e, const tensor<typename E::backend_type>& x, const patch_mask* pm,
                         const typename E::saved_type& s) {
    e.forward_tokens(x, nullptr, pm);
    e.backward_tokens(s, x);
    e.has_mask_token();
    e.mask_token();
    e.patch_size();
  }, "simmim<E>: E must be a ViT-like encoder with forward_tokens(x, mask, hide) / backward_tokens and a mask "
     "token (e.g. ssl::vit built with vit_options::mask_token)");

 public:
  using backend_type = typename E::backend_type;
  using B = backend_type;

  struct forward_state {
    typename E::saved_type encoder;
    typename linear<B>::saved_type head;
  };

  /// channels: the images' C (the head predicts C p p values per patch).
  simmim(E encoder, int64_t channels, const simmim_options& o = {}, rng gen = rng(0, 0x53494d4d))
      : encoder_(std::move(encoder)), opt_(o),
        loss_(masked_reconstruction::l1(o.norm_pix)) {
    check<value_error>(encoder_.has_mask_token(),
                       "simmim: the encoder needs a mask token (build the ViT with vit_options::mask_token = true)");
    check<value_error>(o.mask_ratio > 0.0f && o.mask_ratio < 1.0f, "simmim: expected a mask ratio in (0, 1), got ",
                       o.mask_ratio);
    check<value_error>(o.mask_unit >= 1, "simmim: expected a mask unit of >= 1 patch, got ", o.mask_unit);
    check<value_error>(o.mask_token_std >= 0.0f, "simmim: expected a mask token std >= 0, got ", o.mask_token_std);
    check<value_error>(channels >= 1, "simmim: expected >= 1 image channel, got ", channels);
    const int64_t p = encoder_.patch_size();
    check<value_error>(!o.norm_pix || channels * p * p >= 2,
                       "simmim: norm_pix needs patches of >= 2 values, got C p p = ", channels * p * p);
    if (o.mask_token_std > 0.0f) {  // the official trunc_normal(0.02) (the ViT's own token starts at 0)
      rng tg = gen.fork(1);
      init::trunc_normal(encoder_.mask_token().value, tg, o.mask_token_std);
    }
    // PyTorch's default init of the official Conv2d(D, C p^2, 1): U(+-1/sqrt(D)) for weight and bias
    head_ = linear<B>(encoder_.feature_dim(), channels * p * p, true, gen.fork(0));
  }

  /// The masks of training step `step` for this replica's n images of a gh x gw patch grid (rows
  /// [first, first + n) of the global batch's draw, first = rank n).
  patch_mask mask_for_step(int64_t n, int64_t gh, int64_t gw, int64_t step) const {
    return unit_mask(n, gh, gw, unit_options(), step_rng(step), replica_.first_row(n));
  }

  /// Predicted pixels of every patch (N, L, C p p), the encoder seeing `mask`'s patches replaced by
  /// its mask token. mask: for the N images of x's grid.
  output<forward_state, B> forward(const tensor<B>& x, const patch_mask& mask) {
    check_input(x);
    return forward_unchecked(x, mask);
  }

  /// Backward of forward: dpred (N, L, C p p) -> dx; accumulates encoder (mask token included) and head grads.
  tensor<B> backward(const forward_state& s, const tensor<B>& dpred) {
    const tensor<B> dpatch = head_.backward(s.head, dpred);  // (N, L, D)
    // the [CLS] output has no loss: a zero row in front
    return encoder_.backward_tokens(s.encoder, ops::prepend_token(dpatch, tensor<B>(shape{dpatch.dim(2)}, 0.0f)));
  }

  /// The regression targets: the patches of x (N, L, C p p), channel-major within a patch (the order
  /// PixelShuffle gives the official head's channels).
  tensor<B> targets(const tensor<B>& x) const { return ops::patchify(x, encoder_.patch_size()); }

  /// views: exactly one (N, C, H, W) batch.
  step_stats train_step(const std::vector<tensor<B>>& views) {
    SSL_PROFILE_SCOPE("simmim step");
    check<value_error>(views.size() == 1, "simmim: expected 1 view per image, got ", views.size());
    const tensor<B>& x = views[0];
    check_input(x);
    const int64_t p = encoder_.patch_size(), N = x.dim(0), gh = x.dim(2) / p, gw = x.dim(3) / p, L = gh * gw;
    double normaliser = 0;
    const patch_mask m = step_masks(N, gh, gw, normaliser);
    tensor<cpu> mask(shape{N, L});
    for (int64_t r = 0; r < N * L; ++r) mask[r] = m.hidden[size_t(r)] ? 1.0f : 0.0f;
    auto pred = forward_unchecked(x, m);
    const auto r = loss_(pred.y, targets(x), mask, normaliser);
    backward(pred.saved, r.grad_pred);
    // Read last: on the GPU the whole step is queued before the host waits for the loss.
    const float loss = host_loss(r.value);
    expect_finite_loss(loss, "simmim");
    return {loss};
  }

  void after_step(const step_info& info) { step_ = info.step; }

  void collect(param_list<B>& out, const std::string& prefix) {
    encoder_.collect(out, join_name(prefix, "encoder"));  // encoder.mask_token among them
    head_.collect(out, join_name(prefix, "head"));
  }

  E& encoder() { return encoder_; }
  const E& encoder() const { return encoder_; }
  linear<B>& head() { return head_; }
  const masked_reconstruction& loss() const { return loss_; }
  const simmim_options& options() const { return opt_; }
  int64_t step_count() const { return step_; }
  void set_step_count(int64_t s) { step_ = s; }
  /// Data-parallel replica `rank` of `world_size`, each with n images of every global batch of
  /// n world_size (dist::data_parallel calls it): the masks are this replica's rows of the global
  /// batch's masks and the loss is divided by the global masked count / world_size.
  void set_replica(int rank, int world_size) { replica_.set(rank, world_size); }

 private:
  unit_mask_options unit_options() const { return {.unit = opt_.mask_unit, .ratio = opt_.mask_ratio}; }
  rng step_rng(int64_t step) const { return rng(opt_.seed, 0x53494d01).fork(uint64_t(step)); }
  /// This step's masks of this replica's n images and the loss's denominator: 0 (the batch's own
  /// masked count), or with replicas the global batch's masked count / W, both from one draw of the
  /// global batch's masks (this replica's rows sliced out: the same rows mask_for_step draws).
  patch_mask step_masks(int64_t n, int64_t gh, int64_t gw, double& normaliser) const {
    normaliser = 0;
    if (replica_.world_size == 1) return mask_for_step(n, gh, gw, step_);
    const patch_mask all = unit_mask(n * replica_.world_size, gh, gw, unit_options(), step_rng(step_));
    normaliser = double(all.hidden_count()) / double(replica_.world_size);
    const auto first = all.hidden.begin() + replica_.first_row(n) * gh * gw;
    return patch_mask{.batch = n, .tokens = gh * gw, .hidden = std::vector<uint8_t>(first, first + n * gh * gw)};
  }
  /// Images (N, C, H, W), H and W multiples of the patch size, C the channels the head predicts.
  void check_input(const tensor<B>& x) const {
    const int64_t p = encoder_.patch_size();
    check<shape_error>(x.rank() == 4 && x.dim(2) % p == 0 && x.dim(3) % p == 0 && x.dim(2) > 0 && x.dim(3) > 0,
                       "simmim: expected images (N, C, H, W) with H, W multiples of the patch size ", p, ", got ",
                       x.shape());
    check<shape_error>(x.dim(1) * p * p == head_.out_features(), "simmim: the head predicts ", head_.out_features(),
                       " values per patch but images with ", x.dim(1), " channel(s) give ", x.dim(1) * p * p,
                       " (construct simmim with channels = ", x.dim(1), ")");
  }
  /// forward without check_input (train_step has checked x already).
  output<forward_state, B> forward_unchecked(const tensor<B>& x, const patch_mask& mask) {
    output<forward_state, B> out;
    auto t = encoder_.forward_tokens(x, nullptr, &mask);  // (N, 1 + L, D)
    out.saved.encoder = std::move(t.saved);
    auto h = head_.forward(ops::slice_tokens(t.y, 1, t.y.dim(1) - 1));  // patches only
    out.saved.head = std::move(h.saved);
    out.y = std::move(h.y);
    return out;
  }

  E encoder_;
  simmim_options opt_;
  masked_reconstruction loss_;
  linear<B> head_;
  int64_t step_ = 0;
  methods_detail::replica_place replica_;  // data-parallel: this replica's place in the global batch
};

}  // namespace ssl
