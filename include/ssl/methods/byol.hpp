#pragma once
// BYOL (Grill et al. 2020, "Bootstrap Your Own Latent") and SimSiam (Chen & He 2021).
//
// Online network: encoder -> projector -> predictor; target network: an EMA copy of
// encoder + projector (copying a module deep-copies its tensors).
//   x = [v1; v2]                 (2B, C, H, W)  one batch, BN statistics over both views
//   p = pred(proj(enc(x)))       (2B, D)        online predictions
//   z = proj_t(enc_t(x))         (2B, D)        target projections, stop-gradient
//   L = byol(p1, z2) + byol(p2, z1) = 2 byol(p, swap(z))   (the paper sums both directions)
// after_step: tau = 1 - (1 - tau_base)(cos(pi k / K) + 1) / 2, target = tau target + (1 - tau) online.
// The target runs `forward` in train mode (batch statistics, as BYOL's target network) and the
// saved state is dropped at once: no gradient flows into it, and its BN running statistics
// follow its own batches.
//
// SimSiam = the same composition without a target: z comes from the online encoder + projector
// (stop-gradient on the same forward), L = 1/2 D(p1, z2) + 1/2 D(p2, z1) = simsiam(p, swap(z)).
// Use `simsiam_method<E, P, Q>`.
//
// The backend is the parts' backend tag: byol_method<convnet_s<cuda>, projection_mlp<cuda>,
// prediction_mlp<cuda>> takes the same step on the GPU (under nvcc); the loss value is read back
// once, after the backward has been queued.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../losses/byol.hpp"
#include "../losses/loss.hpp"
#include "../losses/simsiam.hpp"
#include "detail/method_parts.hpp"

namespace ssl {

struct byol_options {
  float tau_base = 0.996f;  // EMA momentum at step 0
  bool cosine_tau = true;   // raise tau to 1 along a cosine over the planned steps
};

template <class E, class P, class Q = P, class L = byol, bool Momentum = true>
class byol_method {
  static_assert(Encoder<E>, "byol_method<E, P, Q, L>: E must satisfy ssl::Encoder (a Module with feature_dim())");
  static_assert(Head<P>, "byol_method<E, P, Q, L>: P (projector) must satisfy ssl::Head");
  static_assert(Head<Q>, "byol_method<E, P, Q, L>: Q (predictor) must satisfy ssl::Head");
  static_assert(std::same_as<typename E::backend_type, typename P::backend_type> &&
                    std::same_as<typename E::backend_type, typename Q::backend_type>,
                "byol_method<E, P, Q, L>: encoder, projector and predictor must use the same backend tag");
  static_assert(Loss<L, tensor<cpu>, tensor<cpu>>,
                "byol_method<E, P, Q, L>: L must satisfy ssl::Loss on (predictions, targets), both (N, D)");

 public:
  using backend_type = typename E::backend_type;
  static constexpr bool has_target = Momentum;

  byol_method(E encoder, P projector, Q predictor, byol_options o = {}, L loss = L{})
      : encoder_(std::move(encoder)), projector_(std::move(projector)), predictor_(std::move(predictor)),
        loss_(std::move(loss)), opt_(o), tau_(o.tau_base) {
    const char* who = Momentum ? "byol" : "simsiam";
    check<shape_error>(encoder_.feature_dim() == projector_.in_dim(), who, ": the encoder gives features of size ",
                       encoder_.feature_dim(), " but the projector expects in_dim ", projector_.in_dim());
    check<shape_error>(projector_.out_dim() == predictor_.in_dim(), who, ": the projector gives ",
                       projector_.out_dim(), "-d outputs but the predictor expects in_dim ", predictor_.in_dim());
    check<shape_error>(predictor_.out_dim() == projector_.out_dim(), who, ": the predictor gives ",
                       predictor_.out_dim(), "-d outputs but the targets (projector outputs) are ",
                       projector_.out_dim(), "-d");
    methods_detail::expect_momentum(o.tau_base, who);
    if constexpr (Momentum) {
      target_encoder_.emplace(encoder_);
      target_projector_.emplace(projector_);
    }
  }

  /// views: two (B, C, H, W) batches of the same shape.
  step_stats train_step(const std::vector<tensor<backend_type>>& views) {
    const char* who = Momentum ? "byol" : "simsiam";
    methods_detail::expect_same_views(views, 2, who);
    const tensor<backend_type> x = concat_batch({&views[0], &views[1]});
    auto h = encoder_.forward(x);
    auto z = projector_.forward(h.y);
    auto p = predictor_.forward(z.y);
    tensor<backend_type> target;
    if constexpr (Momentum)
      target = target_projector_->forward(target_encoder_->forward(x).y).y;  // train-mode BN, no backward
    else
      target = z.y;  // stop-gradient on the same network
    auto r = loss_(p.y, methods_detail::swap_halves(target));
    const float scale = Momentum ? 2.0f : 1.0f;  // BYOL sums the two directions, SimSiam averages them
    if (scale != 1.0f) methods_detail::scale_in_place(r.grad_p, scale);
    encoder_.backward(std::move(h.saved), projector_.backward(z.saved, predictor_.backward(p.saved, r.grad_p)));
    // Read last: on a device the whole step is queued before the host waits for the loss.
    const float loss = scale * host_loss(r.value);
    expect_finite_loss(loss, who);
    return {loss};
  }

  /// EMA update of the target (BYOL); nothing for SimSiam.
  void after_step(const step_info& info) {
    if constexpr (Momentum) {
      tau_ = opt_.cosine_tau ? methods_detail::cosine_to_one(opt_.tau_base, info.progress()) : opt_.tau_base;
      methods_detail::ema_module(*target_encoder_, encoder_, tau_);
      methods_detail::ema_module(*target_projector_, projector_, tau_);
    }
  }

  void collect(param_list<backend_type>& out, const std::string& prefix) {
    encoder_.collect(out, join_name(prefix, "encoder"));
    projector_.collect(out, join_name(prefix, "projector"));
    predictor_.collect(out, join_name(prefix, "predictor"));
  }
  /// BN statistics of the online network, and the whole target (weights + statistics).
  void collect_buffers(methods_detail::buffer_list<backend_type>& out, const std::string& prefix) {
    methods_detail::module_buffers(encoder_, out, join_name(prefix, "encoder"));
    methods_detail::module_buffers(projector_, out, join_name(prefix, "projector"));
    methods_detail::module_buffers(predictor_, out, join_name(prefix, "predictor"));
    if constexpr (Momentum) {
      methods_detail::teacher_buffers(*target_encoder_, out, join_name(prefix, "target_encoder"));
      methods_detail::teacher_buffers(*target_projector_, out, join_name(prefix, "target_projector"));
    }
  }

  E& encoder() { return encoder_; }
  const E& encoder() const { return encoder_; }
  P& projector() { return projector_; }
  Q& predictor() { return predictor_; }
  /// The EMA target encoder (BYOL only).
  E& target_encoder() requires Momentum { return *target_encoder_; }
  P& target_projector() requires Momentum { return *target_projector_; }
  /// The momentum used by the latest after_step (tau_base before the first).
  float tau() const { return tau_; }
  const L& loss() const { return loss_; }

 private:
  E encoder_;
  P projector_;
  Q predictor_;
  std::optional<E> target_encoder_;
  std::optional<P> target_projector_;
  L loss_;
  byol_options opt_;
  float tau_;
};

/// SimSiam: BYOL's composition without the momentum target (stop-gradient on the same network).
template <class E, class P, class Q = P>
using simsiam_method = byol_method<E, P, Q, simsiam, false>;

}  // namespace ssl
