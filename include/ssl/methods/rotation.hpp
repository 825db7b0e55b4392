#pragma once
// Rotation prediction (RotNet, Gidaris et al. 2018): every image is shown at 0, 90, 180 and 270
// degrees and a linear classifier on the encoder's features predicts which.
//   x = views[0]                          (B, C, S, S)
//   r, y = rotation_batch(x)              (4B, C, S, S), y[4n + k] = k
//   logits = head(enc(r))                 (4B, 4)
//   L = cross_entropy(logits, y)
// The head is any Head with out_dim() == 4 (a one-layer projection_mlp is a linear classifier).
#include <string>
#include <utility>
#include <vector>

#include "../losses/cross_entropy.hpp"
#include "../pretext/rotation.hpp"
#include "detail/method_parts.hpp"

namespace ssl {

template <class E, class H, class L = cross_entropy>
class rotation_method : public methods_detail::encoder_head_loss<E, H, L> {
  static_assert(Encoder<E>, "rotation_method<E, H, L>: E must satisfy ssl::Encoder (a Module with feature_dim())");
  static_assert(Head<H>, "rotation_method<E, H, L>: H must satisfy ssl::Head (the 4-way rotation classifier)");
  static_assert(std::same_as<typename E::backend_type, typename H::backend_type>,
                "rotation_method<E, H, L>: encoder and head must use the same backend tag");
  static_assert(Loss<L, tensor<cpu>, std::vector<int64_t>>,
                "rotation_method<E, H, L>: L must satisfy ssl::Loss on (logits (N, 4), labels N)");

  using parts = methods_detail::encoder_head_loss<E, H, L>;
  using parts::encoder_;
  using parts::head_;
  using parts::loss_;

 public:
  using backend_type = typename E::backend_type;
  static constexpr int64_t classes = 4;

  rotation_method(E encoder, H head, L loss = L{}) : parts(std::move(encoder), std::move(head), std::move(loss)) {
    check<shape_error>(encoder_.feature_dim() == head_.in_dim(), "rotation: the encoder gives features of size ",
                       encoder_.feature_dim(), " but the classifier head expects in_dim ", head_.in_dim());
    check<shape_error>(head_.out_dim() == classes, "rotation: the classifier head must give ", classes,
                       " logits (one per rotation), got out_dim ", head_.out_dim());
  }

  /// views: one (or more; the first is used) batch of square images (B, C, S, S).
  step_stats train_step(const std::vector<tensor<backend_type>>& views) {
    check<value_error>(!views.empty(), "rotation: expected at least one view, got none");
    const auto rb = pretext::rotation_batch(views[0]);
    auto h = encoder_.forward(rb.images);
    auto logits = head_.forward(h.y);
    auto r = loss_(logits.y, rb.labels);
    expect_finite_loss(r.value, "rotation");
    encoder_.backward(std::move(h.saved), head_.backward(logits.saved, r.grad_logits));
    return {r.value};
  }
};

}  // namespace ssl
