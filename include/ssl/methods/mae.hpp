#pragma once
// MAE (He et al. 2022, "Masked Autoencoders Are Scalable Vision Learners"): one view per image.
//   mask   = random_token_mask(N, L, ratio, rng(seed).fork(step))   per-sample argsort of noise,
//            keep K = int(L (1 - ratio)) patches (W2: int(49 * 0.25) = 12)
//   latent = encoder.forward_tokens(x, mask)       (N, 1 + K, D_enc)  pos added before the gather
//   pred   = decoder(latent, mask)                 (N, L, C p p)
//   L      = masked_reconstruction(pred, patchify(x), mask)   masked patches only, optional norm_pix
// The encoder is any ViT-like type with forward_tokens / backward_tokens / patch_size (ssl::vit);
// the decoder an ssl::mae_decoder. The step counter makes the masks reproducible: step s always
// draws the same mask for the same seed (after_step re-syncs it with the trainer's step count).
// The backend is the parts' backend tag: mae<vit<cuda>, mae_decoder<cuda>> runs the same step on the
// GPU (under nvcc); masks are drawn on the host either way.
#include <concepts>
#include <string>
#include <utility>
#include <vector>

#include "../backend/cpu/patch_embed.hpp"
#include "../encoders/vit.hpp"
#include "../heads/mae_decoder.hpp"
#include "../losses/masked_reconstruction.hpp"
#include "detail/replica_place.hpp"
#include "method.hpp"
#if defined(__CUDACC__)
#include "../backend/cuda/tokens.cuh"  // ops::patchify on tensor<cuda>
#endif

namespace ssl {

struct mae_options {
  float mask_ratio = 0.75f;
  bool norm_pix_loss = true;
  uint64_t seed = 0;
};

template <class E = vit<>, class Dec = mae_decoder<typename E::backend_type>>
class mae {
  static_assert(Encoder<E>, "mae<E, Dec>: E must satisfy ssl::Encoder");
  static_assert(std::same_as<typename E::backend_type, typename Dec::backend_type>,
                "mae<E, Dec>: encoder and decoder must use the same backend tag");
  static_assert(requires(E e, const tensor<typename E::backend_type>& x, const token_mask* m) {
    e.forward_tokens(x, m);
    e.patch_size();
  }, "mae<E, Dec>: E must be a ViT-like encoder with forward_tokens(x, mask) / backward_tokens (e.g. ssl::vit)");

 public:
  using backend_type = typename E::backend_type;

  mae(E encoder, Dec decoder, const mae_options& o = {})
      : encoder_(std::move(encoder)), decoder_(std::move(decoder)), opt_(o), loss_(o.norm_pix_loss) {
    check<value_error>(o.mask_ratio >= 0.0f && o.mask_ratio < 1.0f, "mae: expected a mask ratio in [0, 1), got ",
                       o.mask_ratio);
    check<shape_error>(encoder_.feature_dim() == decoder_.options().in_dim, "mae: the encoder gives tokens of size ",
                       encoder_.feature_dim(), " but the decoder expects in_dim ", decoder_.options().in_dim);
  }

  /// The mask of training step `step` for a batch of n images of L patches.
  token_mask mask_for_step(int64_t n, int64_t L, int64_t step) const {
    return random_token_mask(n, L, opt_.mask_ratio, rng(opt_.seed, 0x4d4145).fork(uint64_t(step)),
                             replica_.first_row(n));
  }

  /// views: exactly one (N, C, H, W) batch; H / p x W / p must be the decoder's grid.
  step_stats train_step(const std::vector<tensor<backend_type>>& views) {
    check<value_error>(views.size() == 1, "mae: expected 1 view per image, got ", views.size());
    const tensor<backend_type>& x = views[0];
    const int64_t p = encoder_.patch_size();
    check<shape_error>(x.rank() == 4 && x.dim(2) % p == 0 && x.dim(3) % p == 0 &&
                           (x.dim(2) / p) * (x.dim(3) / p) == decoder_.num_patches(),
                       "mae: expected images (N, C, H, W) giving ", decoder_.num_patches(), " patches of ", p, "x", p,
                       ", got ", x.shape());
    const token_mask m = mask_for_step(x.dim(0), decoder_.num_patches(), step_++);
    auto latent = encoder_.forward_tokens(x, &m);
    auto pred = decoder_.forward(latent.y, m);
    const auto r = loss_(pred.y, ops::patchify(x, p), m.mask);
    encoder_.backward_tokens(latent.saved, decoder_.backward(pred.saved, r.grad_pred));
    // Read last: on the GPU the whole step is queued before the host waits for the loss.
    const float loss = host_loss(r.value);
    expect_finite_loss(loss, "mae");
    return {loss};
  }

  /// No-grad reconstruction with a given mask: predictions (N, L, C p p) (normalised-patch space
  /// when norm_pix_loss is on).
  tensor<backend_type> reconstruct(const tensor<backend_type>& x, const token_mask& m) const {
    return decoder_.infer(encoder_.infer_tokens(x, &m), m);
  }

  void after_step(const step_info& info) { step_ = info.step; }

  void collect(param_list<backend_type>& out, const std::string& prefix) {
    encoder_.collect(out, join_name(prefix, "encoder"));
    decoder_.collect(out, join_name(prefix, "decoder"));
  }

  E& encoder() { return encoder_; }
  const E& encoder() const { return encoder_; }
  Dec& decoder() { return decoder_; }
  const mae_options& options() const { return opt_; }
  int64_t step_count() const { return step_; }
  void set_step_count(int64_t s) { step_ = s; }
  /// Data-parallel replica `rank` of `world_size`, each with n images of every global batch of
  /// n world_size (dist::data_parallel calls it): the masks are this replica's rows of the global
  /// batch's masks, so the replicas together draw what one process on the global batch would.
  void set_replica(int rank, int world_size) { replica_.set(rank, world_size); }

 private:
  E encoder_;
  Dec decoder_;
  mae_options opt_;
  masked_reconstruction loss_;
  int64_t step_ = 0;
  methods_detail::replica_place replica_;  // data-parallel: this replica's place in the global batch
};

}  // namespace ssl
