#pragma once
// Rotation prediction (RotNet, Gidaris et al. 2018): every image is shown at 0, 90, 180 and 270
// degrees and a linear classifier on the encoder's features predicts which.
//   x = views[0]                          (B, C, S, S)
//   r, y = rotation_batch(x)              (4B, C, S, S), y[4n + k] = k
//   logits = head(enc(r))                 (4B, 4)
//   L = cross_entropy(logits, y)
// The head is any Head with out_dim() == 4 (a one-layer projection_mlp is a linear classifier).
// The backend is the parts' backend tag: rotation_method<convnet_s<cuda>, projection_mlp<cuda>>
// runs the same step on the GPU (under nvcc), rotating the batch there.
#include <concepts>
#include <string>
#include <utility>
#include <vector>

#include "../losses/cross_entropy.hpp"
#include "../losses/loss.hpp"
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
    if constexpr (std::same_as<backend_type, cpu>) {
      const auto rb = pretext::rotation_batch(views[0]);
      return run(rb.images, rb.labels);
    } else {
      // The same rotations on the device: rotation_batch of a batch of element indices is the
      // gather map (built on the host from the shape alone), applied by one gather kernel.
      const auto map = pretext::rotation_batch(methods_detail::element_index_images(views[0].shape()));
      return run(methods_detail::gather_per_image(views[0], map.images), map.labels);
    }
  }

 private:
  // images (4B, C, S, S), labels 4B rotation classes.
  step_stats run(const tensor<backend_type>& images, const std::vector<int64_t>& labels) {
    auto h = encoder_.forward(images);
    auto logits = head_.forward(h.y);
    auto r = loss_(logits.y, labels);
    encoder_.backward(std::move(h.saved), head_.backward(logits.saved, r.grad_logits));
    // Read last: on the GPU the whole step is queued before the host waits for the loss.
    const float loss = host_loss(r.value);
    expect_finite_loss(loss, "rotation");
    return {loss};
  }
};

}  // namespace ssl
