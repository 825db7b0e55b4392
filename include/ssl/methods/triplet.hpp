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
// Data-parallel (dist::data_parallel gives set_replica and set_batch_gather): mining runs over the
// global batch, as in one process. Pseudo-labels are global image indices (rank r's image i is
// r B + i); every rank gathers all ranks' embeddings and labels (W V B, D), mines and scores the
// whole global batch (the same L on every rank), and back-propagates W dL/de over its own rows, so
// the gradient averaged by data_parallel is the single process's (tests/dist/triplet_data_parallel_test.cpp).
// The backend is the parts' backend tag: triplet_method<convnet_s<cuda>, projection_mlp<cuda>> runs
// the same step on the GPU (under nvcc); the labels stay a host list (uploaded by the loss).
#include <functional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "../losses/loss.hpp"
#include "../losses/triplet.hpp"
#include "detail/global_batch_rows.hpp"
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
    std::vector<int64_t> y = methods_detail::pseudo_labels(int64_t(views.size()), views[0].dim(0));
    const int64_t first = global_.place.first_row(views[0].dim(0));  // this replica's images in the global batch
    for (auto& label : y) label += first;
    return run(views, y);
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

  /// Data-parallel hooks (dist::data_parallel calls both at construction): this replica's place in
  /// the global batch, and `gather(t)`: every rank's rows of t (n, ...) stacked in rank order.
  void set_replica(int rank, int world_size) { global_.place.set(rank, world_size); }
  void set_batch_gather(std::function<tensor<cpu>(const tensor<cpu>&)> gather)
    requires std::same_as<backend_type, cpu>
  {
    global_.gather = std::move(gather);
  }
  /// Whether the loss mines over every rank's rows (a gather is set and W > 1).
  bool mines_across_ranks() const { return global_.active(); }

 private:
  step_stats run(const std::vector<tensor<backend_type>>& views, const std::vector<int64_t>& y) {
    std::vector<const tensor<backend_type>*> parts;
    for (const auto& v : views) parts.push_back(&v);
    const tensor<backend_type> x = views.size() == 1 ? views[0] : concat_batch(parts);
    auto h = encoder_.forward(x);
    auto e = head_.forward(h.y);
    auto r = [&] {
      if constexpr (std::same_as<backend_type, cpu>)
        if (mines_across_ranks()) return global_loss(e.y, y);
      return loss_(e.y, y);
    }();
    encoder_.backward(std::move(h.saved), head_.backward(e.saved, r.grad_x));
    // Read last: on the GPU the whole step is queued before the host waits for the loss.
    const float loss = host_loss(r.value);
    expect_finite_loss(loss, "triplet");
    return {loss};
  }

  // The loss over every rank's rows: e (n, D) and y (n) here, (W n, D) and W n labels gathered in
  // rank order; value L of the global batch, grad_x = W dL/de over this rank's rows.
  auto global_loss(const tensor<cpu>& e, const std::vector<int64_t>& y) {
    const int64_t n = e.dim(0), W = global_.place.world_size;
    tensor<cpu> labels(shape{n});
    for (int64_t i = 0; i < n; ++i) {
      check<value_error>(y[size_t(i)] >= 0 && y[size_t(i)] < (int64_t(1) << 24), "triplet: labels of a data-parallel "
                         "batch must be in [0, 2^24) (gathered as floats), got ", y[size_t(i)]);
      labels[i] = float(y[size_t(i)]);
    }
    const tensor<cpu> all_e = global_.all_rows(e, "triplet"), all_labels = global_.all_rows(labels, "triplet");
    std::vector<int64_t> all_y(size_t(W * n));
    for (int64_t i = 0; i < W * n; ++i) all_y[size_t(i)] = int64_t(all_labels[i]);
    auto r = loss_(all_e, all_y);
    r.grad_x = global_.own_share(r.grad_x, n);
    return r;
  }

  methods_detail::global_batch global_;  // data-parallel: this replica's place, the gather (host only)
};

}  // namespace ssl
