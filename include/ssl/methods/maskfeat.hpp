#pragma once
// MaskFeat (Wei et al. 2022, "Masked Feature Prediction for Self-Supervised Visual Pre-Training"):
// predict the HoG features of masked patches. One view per image.
//   mask   = random_token_mask(N, L, ratio, rng(seed).fork(step))      (N, L), 1 = masked
//   tok    = patch_embed(x)                                              (N, L, D)
//   tok_nl = mask_token  where mask_nl = 1      (SimMIM / MaskFeat: the encoder sees every token)
//   seq    = [cls; tok] + pos_embed -> blocks -> norm                    (N, 1 + L, D)
//   pred   = Linear(D, P)(seq[:, 1:])                                    (N, L, P), P = hog_dim(C)
//   L      = masked_reconstruction(pred, hog(x), mask), norm_pix off: MSE on masked patches only
// The encoder runs through the ViT's public parts (patch(), pos(), cls_token(), add_registers(),
// block(i), drop_registers(), norm()), so any ssl::vit works unchanged (register tokens and LayerScale
// included). Masking is random per sample (MAE's argsort of noise) rather
// than MaskFeat's block-wise masking; the default ratio 0.4 is the paper's. HoG targets are taken
// on the view as given (HoG is invariant to the per-channel affine normalisation up to its eps).
// Names: encoder.*, mask_token (1, 1, D) trunc_normal(0.02), head.weight / head.bias (trunc_normal(0.02), 0).
// The backend is the encoder's backend tag: maskfeat<vit<cuda>> runs the same step on the GPU (under
// nvcc). Masks are host tensors on every backend (drawn on the host). Device fallback: the HoG targets
// are computed on the host from a copy of the batch (pretext::hog has no device op) and uploaded once;
// the mask-token plumbing (ops::mask_tokens, as vit's own mask token) and the loss run on the device.
#include <concepts>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../backend/cpu/vit_ops.hpp"
#include "../encoders/vit.hpp"
#include "../losses/masked_reconstruction.hpp"
#include "../pretext/hog.hpp"
#include "detail/replica_place.hpp"
#include "method.hpp"
#if defined(__CUDACC__)
#include "../backend/cuda/tokens.cuh"   // ops::prepend_token / mask_tokens on tensor<cuda>
#include "../backend/cuda/vit_ops.cuh"  // ops::slice_tokens / sum_batch on tensor<cuda>
#endif

namespace ssl {

struct maskfeat_options {
  float mask_ratio = 0.4f;
  pretext::hog_options hog{};  // cell 4, patch 4 (must equal the ViT's patch), 9 bins
  uint64_t seed = 0;
};

template <class E = vit<>>
class maskfeat {
  static_assert(Encoder<E>, "maskfeat<E>: E must satisfy ssl::Encoder");
  static_assert(requires(E e, int64_t i) {
    e.patch();
    e.pos();
    e.cls_token();
    e.block(i);
    e.norm();
    e.depth();
    e.patch_size();
  }, "maskfeat<E>: E must be a ViT-like encoder exposing patch(), pos(), cls_token(), block(i), norm() (e.g. ssl::vit)");

 public:
  using backend_type = typename E::backend_type;
  using B = backend_type;

  struct forward_state {
    typename std::remove_reference_t<decltype(std::declval<E&>().patch())>::saved_type patch;
    typename std::remove_reference_t<decltype(std::declval<E&>().pos())>::saved_type pos;
    std::vector<typename std::remove_reference_t<decltype(std::declval<E&>().block(0))>::saved_type> blocks;
    typename std::remove_reference_t<decltype(std::declval<E&>().norm())>::saved_type norm;
    typename linear<B>::saved_type head;
  };

  maskfeat(E encoder, int64_t channels, const maskfeat_options& o = {}, rng gen = rng(0, 0x4d46))
      : encoder_(std::move(encoder)), opt_(o), loss_(/*norm_pix=*/false) {
    check<value_error>(o.mask_ratio > 0.0f && o.mask_ratio < 1.0f, "maskfeat: expected a mask ratio in (0, 1), got ",
                       o.mask_ratio);
    check<value_error>(o.hog.patch == encoder_.patch_size(), "maskfeat: the HoG patch (", o.hog.patch,
                       ") must equal the ViT's patch size (", encoder_.patch_size(), ")");
    const int64_t D = encoder_.feature_dim();
    mask_token_ = parameter<B>(shape{1, 1, D}, param_kind::weight);
    rng mg = gen.fork(0);
    init::trunc_normal(mask_token_.value, mg, 0.02f);
    head_ = linear<B>(D, pretext::hog_dim(channels, o.hog), true, gen.fork(1));
    head_.reset_trunc_normal(0.02f, gen.fork(2));
  }

  /// The mask of training step `step` for n images of L patches (reproducible from the seed).
  token_mask mask_for_step(int64_t n, int64_t L, int64_t step) const {
    return random_token_mask(n, L, opt_.mask_ratio, rng(opt_.seed, 0x4d465401).fork(uint64_t(step)),
                             replica_.first_row(n));
  }

  /// Predicted HoG vectors for every patch (N, L, P), with the masked patches replaced by the mask token.
  /// mask: (N, L) on the host (nonzero = masked), any number of masked patches per image.
  output<forward_state, B> forward(const tensor<B>& x, const tensor<cpu>& mask) {
    auto& enc = encoder_;
    check_input(x);
    output<forward_state, B> out;
    auto& s = out.saved;
    auto pe = enc.patch().forward(x);
    s.patch = std::move(pe.saved);
    const auto [gh, gw] = enc.patch().grid(x.dim(2), x.dim(3));
    tensor<B> tok = std::move(pe.y);  // (N, L, D)
    const int64_t N = tok.dim(0), L = tok.dim(1);
    expect_shape(mask, shape{N, L}, "maskfeat mask");
    tok = ops::mask_tokens(tok, hidden_flags(mask), mask_token_.value);  // masked rows <- mask_token
    auto p = enc.pos().forward(ops::prepend_token(tok, enc.cls_token().value), gh, gw);
    s.pos = std::move(p.saved);
    tensor<B> seq = enc.add_registers(std::move(p.y));  // (N, 1 + R + L, D) with R registers
    s.blocks.resize(size_t(enc.depth()));
    for (int64_t i = 0; i < enc.depth(); ++i) {
      auto b = enc.block(i).forward(seq);
      s.blocks[size_t(i)] = std::move(b.saved);
      seq = std::move(b.y);
    }
    auto n = enc.norm().forward(enc.drop_registers(std::move(seq)));
    s.norm = std::move(n.saved);
    auto h = head_.forward(drop_first_token(n.y));
    s.head = std::move(h.saved);
    out.y = std::move(h.y);
    return out;
  }

  /// Backward of forward: dpred (N, L, P) -> dx; accumulates encoder, mask-token and head grads.
  /// mask: the host mask given to forward.
  tensor<B> backward(const forward_state& s, const tensor<cpu>& mask, const tensor<B>& dpred) {
    auto& enc = encoder_;
    tensor<B> dpatch = head_.backward(s.head, dpred);  // (N, L, D)
    const int64_t N = dpatch.dim(0), L = dpatch.dim(1), D = dpatch.dim(2);
    tensor<B> g = ops::prepend_token(dpatch, tensor<B>(shape{D}, 0.0f));
    g = enc.drop_registers_backward(enc.norm().backward(s.norm, g));
    for (int64_t i = enc.depth(); i-- > 0;) g = enc.block(i).backward(s.blocks[size_t(i)], g);
    g = enc.pos().backward(s.pos, enc.add_registers_backward(std::move(g)));  // (N, 1 + L, D)
    expect_shape(mask, shape{N, L}, "maskfeat mask");
    // dcls += sum_n g[n, 0];  dtok[n, l] = g[n, 1 + l], zeroed where masked, whose rows add into
    // the mask token's gradient (ops::mask_tokens_backward, row order: deterministic)
    ops::sum_batch(ops::slice_tokens(g, 0, 1), enc.cls_token().grad);
    const tensor<B> dtok = ops::mask_tokens_backward(ops::slice_tokens(g, 1, L), hidden_flags(mask), mask_token_.grad);
    return enc.patch().backward(s.patch, dtok);
  }

  /// views: exactly one (N, C, H, W) batch. On a device backend the HoG targets are computed on the
  /// host from a copy of the batch and uploaded (no device HoG op); the rest of the step runs there.
  step_stats train_step(const std::vector<tensor<B>>& views) {
    check<value_error>(views.size() == 1, "maskfeat: expected 1 view per image, got ", views.size());
    const tensor<B>& x = views[0];
    check_input(x);
    const int64_t L = (x.dim(2) / encoder_.patch_size()) * (x.dim(3) / encoder_.patch_size());
    const token_mask m = mask_for_step(x.dim(0), L, step_);
    const tensor<B> target = hog_targets(x);
    check<shape_error>(target.dim(2) == head_.out_features(), "maskfeat: the head predicts ", head_.out_features(),
                       " HoG values per patch but images with ", x.dim(1), " channel(s) give ", target.dim(2),
                       " (construct maskfeat with channels = ", x.dim(1), ")");
    auto pred = forward(x, m.mask);
    const auto r = loss_(pred.y, target, m.mask);
    backward(pred.saved, m.mask, r.grad_pred);
    // Read last: on the GPU the whole step is queued before the host waits for the loss.
    const float loss = host_loss(r.value);
    expect_finite_loss(loss, "maskfeat");
    return {loss};
  }

  void after_step(const step_info& info) { step_ = info.step; }

  void collect(param_list<B>& out, const std::string& prefix) {
    encoder_.collect(out, join_name(prefix, "encoder"));
    out.push_back({join_name(prefix, "mask_token"), &mask_token_});
    head_.collect(out, join_name(prefix, "head"));
  }

  E& encoder() { return encoder_; }
  const E& encoder() const { return encoder_; }
  linear<B>& head() { return head_; }
  parameter<B>& mask_token() { return mask_token_; }
  const maskfeat_options& options() const { return opt_; }
  int64_t step_count() const { return step_; }
  void set_step_count(int64_t s) { step_ = s; }
  /// Data-parallel replica `rank` of `world_size`, each with n images of every global batch of
  /// n world_size (dist::data_parallel calls it): the masks are this replica's rows of the global
  /// batch's masks, so the replicas together draw what one process on the global batch would.
  void set_replica(int rank, int world_size) { replica_.set(rank, world_size); }

 private:
  void check_input(const tensor<B>& x) const {
    const int64_t p = opt_.hog.patch;
    check<shape_error>(x.rank() == 4 && x.dim(2) % p == 0 && x.dim(3) % p == 0 && x.dim(2) > 0 && x.dim(3) > 0,
                       "maskfeat: expected images (N, C, H, W) with H, W multiples of the patch size ", p, ", got ",
                       x.shape());
  }
  // The host mask (N, L) as ops::mask_tokens' flags (nonzero = masked).
  static std::vector<uint8_t> hidden_flags(const tensor<cpu>& mask) {
    std::vector<uint8_t> h(static_cast<size_t>(mask.numel()));
    for (int64_t r = 0; r < mask.numel(); ++r) h[size_t(r)] = mask[r] != 0.0f;
    return h;
  }
  // (N, 1 + L, D) -> (N, L, D)
  static tensor<B> drop_first_token(const tensor<B>& t) { return ops::slice_tokens(t, 1, t.dim(1) - 1); }
  // HoG targets (N, L, P) of the batch x, on B (device: host HoG of a copy, uploaded once).
  tensor<B> hog_targets(const tensor<B>& x) const {
    if constexpr (std::same_as<B, cpu>) {
      return pretext::hog(x, opt_.hog);
    } else {
      tensor<cpu> host(x.shape());
      x.copy_to_host(host.data());
      const tensor<cpu> h = pretext::hog(host, opt_.hog);
      tensor<B> t(h.shape());
      t.copy_from_host(h.data());
      return t;
    }
  }

  E encoder_;
  maskfeat_options opt_;
  masked_reconstruction loss_;
  parameter<B> mask_token_;
  linear<B> head_;
  int64_t step_ = 0;
  methods_detail::replica_place replica_;  // data-parallel: this replica's place in the global batch
};

}  // namespace ssl
