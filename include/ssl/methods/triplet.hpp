#pragma once
// Triplet metric learning (Schroff et al. 2015; batch-hard mining, Hermans et al. 2017).
//   x = [v_1; ...; v_V]            (V B, C, H, W)
//   e = head(enc(x))               (V B, D)  embeddings
//   y: labels of the rows: pseudo-labels by default (row v B + i belongs to image i, so the views
//      of one image are positives and every other image is a negative), or class labels of a
//      labelled batch (train_step(views, labels)), repeated for every view
//   L = triplet_mining(e, y)       semi-hard by default (cosine distance, margin 0.3): for each
//                                  positive, the closest negative farther than it (else the farthest)
// Why semi-hard: with pseudo-labels on a fresh network, batch-hard (farthest positive, closest
// negative) stalls at L = margin (d_ap = d_an for every anchor) and ends below the random-init
// encoder on Fashion-MNIST; semi-hard and batch-all learn (docs/methods/triplet.md).
// The backend is the parts' backend tag: triplet_method<convnet_s<cuda>, projection_mlp<cuda>> runs
// the same step on the GPU (under nvcc); the labels stay a host list (uploaded by the loss).
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "../losses/loss.hpp"
#include "../losses/triplet.hpp"
#include "detail/method_parts.hpp"

namespace ssl {

template <class E, class H, class L = triplet_mining>
class triplet_method : public methods_detail::encoder_head_loss<E, H, L> {
  static_assert(Encoder<E>, "triplet_method<E, H, L>: E must satisfy ssl::Encoder (a Module with feature_dim())");
  static_assert(Head<H>, "triplet_method<E, H, L>: H must satisfy ssl::Head (the embedding head)");
  static_assert(std::same_as<typename E::backend_type, typename H::backend_type>,
                "triplet_method<E, H, L>: encoder and head must use the same backend tag");
  static_assert(Loss<L, tensor<cpu>, std::vector<int64_t>>,
                "triplet_method<E, H, L>: L must satisfy ssl::Loss on (embeddings (N, D), labels N) with grad_x");

  using parts = methods_detail::encoder_head_loss<E, H, L>;
  using parts::encoder_;
  using parts::head_;
  using parts::loss_;

 public:
  using backend_type = typename E::backend_type;

  /// Default loss: semi-hard, cosine distance, margin 0.3.
  triplet_method(E encoder, H head, L loss = L{triplet_strategy::semi_hard, 0.3f, triplet_distance::cosine})
      : parts(std::move(encoder), std::move(head), std::move(loss)) {
    check<shape_error>(encoder_.feature_dim() == head_.in_dim(), "triplet: the encoder gives features of size ",
                       encoder_.feature_dim(), " but the head expects in_dim ", head_.in_dim());
  }

  /// Unlabelled: V >= 2 views of B images; the views of one image share a pseudo-label.
  step_stats train_step(const std::vector<tensor<backend_type>>& views) {
    check<value_error>(views.size() >= 2, "triplet: pseudo-labels need at least 2 views per image, got ", views.size());
    methods_detail::expect_same_views(views, views.size(), "triplet");
    return run(views, methods_detail::pseudo_labels(int64_t(views.size()), views[0].dim(0)));
  }

  /// Labelled: V >= 1 views of B images and their B class labels (batch-hard over classes).
  step_stats train_step(const std::vector<tensor<backend_type>>& views, std::span<const int64_t> labels) {
    check<value_error>(!views.empty(), "triplet: expected at least one view, got none");
    methods_detail::expect_same_views(views, views.size(), "triplet");
    const int64_t B = views[0].dim(0);
    check<shape_error>(int64_t(labels.size()) == B, "triplet: expected ", B, " labels (one per image), got ",
                       labels.size());
    std::vector<int64_t> y;
    for (size_t v = 0; v < views.size(); ++v) y.insert(y.end(), labels.begin(), labels.end());
    return run(views, y);
  }

 private:
  step_stats run(const std::vector<tensor<backend_type>>& views, const std::vector<int64_t>& y) {
    std::vector<const tensor<backend_type>*> parts;
    for (const auto& v : views) parts.push_back(&v);
    const tensor<backend_type> x = views.size() == 1 ? views[0] : concat_batch(parts);
    auto h = encoder_.forward(x);
    auto e = head_.forward(h.y);
    auto r = loss_(e.y, y);
    encoder_.backward(std::move(h.saved), head_.backward(e.saved, r.grad_x));
    // Read last: on the GPU the whole step is queued before the host waits for the loss.
    const float loss = host_loss(r.value);
    expect_finite_loss(loss, "triplet");
    return {loss};
  }

};

}  // namespace ssl
