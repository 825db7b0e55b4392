#pragma once
// I-JEPA (Assran et al. 2023, "Self-Supervised Learning from Images with a Joint-Embedding
// Predictive Architecture"): predict, in representation space, the target encoder's features of
// several image blocks from one context block of the same image. One view per image, no
// augmentation beyond the crop, no pixel reconstruction, no negatives.
//   masks  = multiblock_mask(N, g, g, rng(seed).fork(step))   M target blocks of K_t patches,
//            one context block of K_c patches (targets removed)           (pretext/multiblock_mask.hpp)
//   h      = LN(target_encoder.infer_tokens(x)[:, 1:])   (N, L, D)  LN without affine, eps 1e-5;
//            the target encoder sees every patch and gets no gradient
//   ctx    = encoder.forward_tokens(x, context)          (N, 1 + K_c, D)  [CLS] + context patches
//   pred   = predictor(ctx repeated M times, targets)    (M N, K_t, D)    block m = rows [m N, (m + 1) N)
//   L      = smooth_l1(pred, h[targets])                  mean over M N K_t D values (beta 1)
//   after_step: target = m target + (1 - m) encoder, m rising linearly from momentum_base to
//               momentum_final over the planned steps (the official ema schedule 0.996 -> 1).
// The encoder is any ViT-like type with forward_tokens / backward_tokens / infer_tokens (ssl::vit);
// the predictor an ssl::ijepa_predictor. Evaluate the context encoder (the official code evaluates
// the target encoder; both are here: encoder() and target_encoder()). Masks are drawn on the host;
// the step counter makes them reproducible (after_step re-syncs it with the trainer's count).
// The backend is the parts' backend tag: ijepa<vit<cuda>, ijepa_predictor<cuda>> runs on the GPU.
#include <algorithm>
#include <concepts>
#include <string>
#include <utility>
#include <vector>

#include "../encoders/vit.hpp"
#include "../heads/ijepa_predictor.hpp"
#include "../losses/smooth_l1.hpp"
#include "../pretext/multiblock_mask.hpp"
#include "detail/method_parts.hpp"

namespace ssl {

struct ijepa_options {
  multiblock_mask_options masks{};
  float momentum_base = 0.996f;   // target EMA momentum at step 0
  float momentum_final = 1.0f;    // ... at the last planned step (linear in between)
  float target_norm_eps = 1e-5f;  // the targets' LayerNorm (F.layer_norm's default)
  float beta = 1.0f;              // smooth-L1 threshold (F.smooth_l1_loss's default)
  uint64_t seed = 0;
};

template <class E = vit<>, class P = ijepa_predictor<typename E::backend_type>>
class ijepa {
  static_assert(Encoder<E>, "ijepa<E, P>: E must satisfy ssl::Encoder");
  static_assert(std::same_as<typename E::backend_type, typename P::backend_type>,
                "ijepa<E, P>: encoder and predictor must use the same backend tag");
  static_assert(requires(E e, const tensor<typename E::backend_type>& x, const token_mask* m) {
    e.forward_tokens(x, m);
    e.infer_tokens(x);
    e.patch_size();
    e.num_patches();
  }, "ijepa<E, P>: E must be a ViT-like encoder with forward_tokens(x, mask) / backward_tokens / infer_tokens (e.g. ssl::vit)");

 public:
  using backend_type = typename E::backend_type;

  ijepa(E encoder, P predictor, const ijepa_options& o = {})
      : encoder_(std::move(encoder)), target_(encoder_), predictor_(std::move(predictor)), opt_(o),
        target_norm_(encoder_.feature_dim(), o.target_norm_eps), loss_(o.beta), momentum_(o.momentum_base) {
    methods_detail::expect_momentum(o.momentum_base, "ijepa");
    methods_detail::expect_momentum(o.momentum_final, "ijepa");
    check<shape_error>(encoder_.feature_dim() == predictor_.options().in_dim, "ijepa: the encoder gives tokens of size ",
                       encoder_.feature_dim(), " but the predictor expects in_dim ", predictor_.options().in_dim);
    check<shape_error>(encoder_.num_patches() == predictor_.num_patches(), "ijepa: the encoder has ",
                       encoder_.num_patches(), " patches at its base resolution, the predictor's grid ",
                       predictor_.num_patches());
    pretext_detail::check_multiblock_options(o.masks);
  }

  /// The masks of training step `step` for a batch of n images.
  multiblock_masks masks_for_step(int64_t n, int64_t step) const {
    const int64_t g = predictor_.options().grid;
    return multiblock_mask(n, g, g, rng(opt_.seed, 0x4a455041).fork(uint64_t(step)), opt_.masks,
                           replica_.first_row(n), replica_.world_size);
  }

  /// views: exactly one (N, C, H, W) batch at the encoder's base resolution.
  step_stats train_step(const std::vector<tensor<backend_type>>& views) {
    SSL_PROFILE_SCOPE("ijepa step");
    check<value_error>(views.size() == 1, "ijepa: expected 1 view per image, got ", views.size());
    const tensor<backend_type>& x = views[0];
    const int64_t p = encoder_.patch_size(), L = predictor_.num_patches();
    check<shape_error>(x.rank() == 4 && x.dim(2) % p == 0 && x.dim(3) % p == 0 && (x.dim(2) / p) * (x.dim(3) / p) == L,
                       "ijepa: expected images (N, C, H, W) giving ", L, " patches of ", p, "x", p, ", got ", x.shape());
    const int64_t N = x.dim(0);
    const multiblock_masks mk = masks_for_step(N, step_++);
    const int64_t M = int64_t(mk.targets.size()), Kt = mk.target_tokens;

    // Targets: LN of the target encoder's patch tokens at every target block, (M N, K_t, D).
    const tensor<backend_type> targets =
        gather_targets(target_norm_.infer(ops::slice_tokens(target_.infer_tokens(x), 1, L)), mk);

    auto ctx = encoder_.forward_tokens(x, &mk.context);
    const token_mask context_rep = repeat_mask(mk.context, M);
    std::vector<int32_t> target_idx;  // (M N, K_t): block m of every sample, then block m + 1
    for (const auto& t : mk.targets) target_idx.insert(target_idx.end(), t.begin(), t.end());
    auto pred = predictor_.forward(repeat_rows(ctx.y, M), context_rep, target_idx, Kt);
    const auto r = loss_(pred.y, targets);
    encoder_.backward_tokens(ctx.saved, sum_blocks(predictor_.backward(pred.saved, r.grad_pred), M));
    const float loss = host_loss(r.value);  // read last: on the GPU the step is queued before the host waits
    expect_finite_loss(loss, "ijepa");
    return {loss};
  }

  /// EMA of the target encoder, momentum linear from momentum_base to momentum_final.
  void after_step(const step_info& info) {
    step_ = info.step;
    const double t = std::clamp(info.progress(), 0.0, 1.0);
    momentum_ = float(double(opt_.momentum_base) + (double(opt_.momentum_final) - double(opt_.momentum_base)) * t);
    methods_detail::ema_module(target_, encoder_, momentum_);
  }

  void collect(param_list<backend_type>& out, const std::string& prefix) {
    encoder_.collect(out, join_name(prefix, "encoder"));
    predictor_.collect(out, join_name(prefix, "predictor"));
  }
  /// The target encoder's weights (checkpointed, not optimised).
  void collect_buffers(methods_detail::buffer_list<backend_type>& out, const std::string& prefix) {
    methods_detail::teacher_buffers(target_, out, join_name(prefix, "target_encoder"));
  }

  E& encoder() { return encoder_; }
  const E& encoder() const { return encoder_; }
  E& target_encoder() { return target_; }
  const E& target_encoder() const { return target_; }
  P& predictor() { return predictor_; }
  const ijepa_options& options() const { return opt_; }
  /// The momentum of the latest after_step (momentum_base before the first).
  float momentum() const { return momentum_; }
  int64_t step_count() const { return step_; }
  void set_step_count(int64_t s) { step_ = s; }
  /// Data-parallel replica `rank` of `world_size` (dist::data_parallel calls it): the masks are
  /// this replica's rows of the global batch's masks (K_c the minimum over the global batch).
  void set_replica(int rank, int world_size) { replica_.set(rank, world_size); }

 private:
  using T = tensor<backend_type>;

  /// h (N, L, D) -> (M N, K_t, D): row m N + n holds sample n's patches of target block m.
  static T gather_targets(T h, const multiblock_masks& mk) {
    const int64_t N = h.dim(0), L = h.dim(1), D = h.dim(2), M = int64_t(mk.targets.size()), Kt = mk.target_tokens;
    std::vector<int32_t> flat;  // indices into h viewed as (1, N L, D)
    flat.reserve(size_t(M * N * Kt));
    for (const auto& t : mk.targets)
      for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < Kt; ++k) flat.push_back(int32_t(n * L + t[size_t(n * Kt + k)]));
    h.reshape(shape{1, N * L, D});  // a view of the same values: one sequence of N L tokens
    T out = ops::gather_tokens(h, flat, M * N * Kt);
    out.reshape(shape{M * N, Kt, D});
    return out;
  }
  /// x (N, ...) -> (M N, ...): M copies of the batch one after another.
  static T repeat_rows(const T& x, int64_t M) {
    shape s = x.shape();
    s[0] *= M;
    T out(s);
    for (int64_t m = 0; m < M; ++m) T::copy_elements(x.data(), out.data() + m * x.numel(), x.numel());
    return out;
  }
  /// dx (M N, ...) -> (N, ...): the sum of the M blocks of rows (adjoint of repeat_rows), added in
  /// place block by block (ops::add_range on either backend).
  static T sum_blocks(const T& dx, int64_t M) {
    const int64_t N = dx.dim(0) / M, len = dx.numel() / M;
    T acc = methods_detail::rows(dx, 0, N);
    for (int64_t m = 1; m < M; ++m) ops::add_range(acc, 0, dx, m * len, len);
    return acc;
  }
  static token_mask repeat_mask(const token_mask& m, int64_t M) {
    token_mask r;
    r.batch = m.batch * M;
    r.tokens = m.tokens;
    r.kept = m.kept;
    for (int64_t i = 0; i < M; ++i) {
      r.keep.insert(r.keep.end(), m.keep.begin(), m.keep.end());
      r.restore.insert(r.restore.end(), m.restore.begin(), m.restore.end());
    }
    return r;  // r.mask stays empty: the predictor reads keep / restore only
  }

  E encoder_;
  E target_;
  P predictor_;
  ijepa_options opt_;
  layer_norm<backend_type> target_norm_;  // weight 1, bias 0, never trained: LN without affine
  smooth_l1 loss_;
  float momentum_;
  int64_t step_ = 0;
  methods_detail::replica_place replica_;
};

}  // namespace ssl
