#pragma once
// NNCLR (Dwibedi et al. 2021, "With a Little Help from My Friends: Nearest-Neighbor Contrastive
// Learning of Visual Representations"): SimCLR's contrast with the positive replaced by the nearest
// neighbour of the embedding in a support set of earlier embeddings, and a predictor.
//
// Parts: encoder E, projector P, predictor Q (the paper: projector 2048-2048-256 with BN, predictor
// 256-4096-256), and the support set (losses/nnclr.hpp), a FIFO of M unit embeddings.
//   x = [v1; v2]                  (2B, C, H, W)  one batch, BN statistics over both views
//   z = proj(enc(x))              (2B, D)        embeddings z1, z2
//   p = pred(z)                   (2B, D)        predictions p1, p2
//   nn_v = NN(z_v, support)       (B, D)         nearest support row (cosine), stop-gradient
//   L = 1/2 [nnclr(nn1, p2) + nnclr(nn2, p1)]    (losses/nnclr.hpp: InfoNCE over the batch, tau 0.1)
// after_step: the support set receives the step's z1 (normalised), as the official and solo-learn
// code. The first step, with the support set still empty, uses each embedding as its own neighbour
// (the reference code starts from random unit rows instead, whose neighbours are noise until the
// set has been overwritten); from the second step on every lookup is a real nearest neighbour.
// Gradients flow into p only (the neighbours are constants), through the predictor, the projector
// and the encoder. The support set (rows, fill count, write position) is a checkpoint buffer.
//
// Data-parallel (host only; dist::data_parallel hands over set_replica and set_batch_gather): the
// loss is taken over the global batch (solo-learn gathers the predictions), each rank's neighbours
// and predictions gathered, every rank back-propagating W times its own rows' gradient; the support
// set receives every rank's z1, so the sets stay identical and W ranks of B images take the step of
// one process with W B (tests/dist/nnclr_data_parallel_test.cpp).
// The backend is the parts': nnclr_method<convnet_s<cuda>, projection_mlp<cuda>> runs the whole step
// on the GPU (the lookup: one GEMM, a row argmax and a gather; the loss: backend/cuda/nnclr.cuh),
// the loss read back last.
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "../heads/projection_mlp.hpp"
#include "../losses/loss.hpp"
#include "../losses/nnclr.hpp"
#include "detail/global_batch_rows.hpp"
#include "detail/method_parts.hpp"

namespace ssl {

struct nnclr_options {
  int64_t support_size = 98304;  // support-set rows M (the paper's ImageNet default)
  float temperature = 0.1f;      // tau of the InfoNCE
};

template <class E, class P = projection_mlp<typename E::backend_type>, class Q = P>
class nnclr_method {
  static_assert(Encoder<E>, "nnclr_method<E, P, Q>: E must satisfy ssl::Encoder (a Module with feature_dim())");
  static_assert(Head<P>, "nnclr_method<E, P, Q>: P (projector) must satisfy ssl::Head");
  static_assert(Head<Q>, "nnclr_method<E, P, Q>: Q (predictor) must satisfy ssl::Head");
  static_assert(std::same_as<typename E::backend_type, typename P::backend_type> &&
                    std::same_as<typename E::backend_type, typename Q::backend_type>,
                "nnclr_method<E, P, Q>: encoder, projector and predictor must use the same backend tag");

 public:
  using backend_type = typename E::backend_type;

  nnclr_method(E encoder, P projector, Q predictor, nnclr_options o = {})
      : encoder_(std::move(encoder)), projector_(std::move(projector)), predictor_(std::move(predictor)),
        opt_(o), loss_(o.temperature), support_(o.support_size, projector_.out_dim()) {
    check<shape_error>(encoder_.feature_dim() == projector_.in_dim(), "nnclr: the encoder gives features of size ",
                       encoder_.feature_dim(), " but the projector expects in_dim ", projector_.in_dim());
    check<shape_error>(projector_.out_dim() == predictor_.in_dim(), "nnclr: the projector gives ", projector_.out_dim(),
                       "-d outputs but the predictor expects in_dim ", predictor_.in_dim());
    check<shape_error>(predictor_.out_dim() == projector_.out_dim(), "nnclr: the predictor gives ", predictor_.out_dim(),
                       "-d outputs but the neighbours (projector outputs) are ", projector_.out_dim(), "-d");
  }

  /// views: two (B, C, H, W) batches of the same shape.
  step_stats train_step(const std::vector<tensor<backend_type>>& views) {
    methods_detail::expect_same_views(views, 2, "nnclr");
    using methods_detail::rows;
    const int64_t B = views[0].dim(0);
    const tensor<backend_type> x = concat_batch({&views[0], &views[1]});
    auto h = encoder_.forward(x);
    auto z = projector_.forward(h.y);
    auto p = predictor_.forward(z.y);
    const int64_t D = z.y.dim(1);
    tensor<backend_type> z1 = rows(z.y, 0, B), z2 = rows(z.y, B, 2 * B), p1 = rows(p.y, 0, B), p2 = rows(p.y, B, 2 * B);
    last_used_support_ = support_.filled() > 0;
    tensor<backend_type> nn1 = last_used_support_ ? support_.nearest(z1) : z1;  // the first step: itself
    tensor<backend_type> nn2 = last_used_support_ ? support_.nearest(z2) : z2;
    bool global = false;
    if constexpr (std::same_as<backend_type, cpu>) {
      global = across_ranks();
      if (global) {  // the loss over the global batch: every rank's rows, in rank order
        nn1 = global_.all_rows(nn1, "nnclr");
        nn2 = global_.all_rows(nn2, "nnclr");
        p1 = global_.all_rows(p1, "nnclr");
        p2 = global_.all_rows(p2, "nnclr");
        z1 = global_.all_rows(z1, "nnclr");
      }
    }
    pending_ = std::move(z1);
    auto a = loss_(nn1, p2);  // view 1's neighbours against view 2's predictions
    auto b = loss_(nn2, p1);
    if constexpr (std::same_as<backend_type, cpu>) {
      if (global) {
        b.grad_p = global_.own_share(b.grad_p, B);
        a.grad_p = global_.own_share(a.grad_p, B);
      }
    }
    // [d p1; d p2] = 1/2 [grad of nnclr(nn2, p1); grad of nnclr(nn1, p2)]
    tensor<backend_type> dp(shape{2 * B, D});
    tensor<backend_type>::copy_elements(b.grad_p.data(), dp.data(), B * D);
    tensor<backend_type>::copy_elements(a.grad_p.data(), dp.data() + B * D, B * D);
    methods_detail::scale_in_place(dp, 0.5f);
    encoder_.backward(std::move(h.saved), projector_.backward(z.saved, predictor_.backward(p.saved, dp)));
    // Read last: on a device the whole step is queued before the host waits for the loss.
    const float loss = 0.5f * (host_loss(a.value) + host_loss(b.value));
    expect_finite_loss(loss, "nnclr");
    return {loss};
  }

  /// The step's view-1 embeddings (every rank's under data_parallel) join the support set.
  void after_step(const step_info&) {
    if (pending_.rank() == 2) support_.enqueue(pending_);
    pending_ = tensor<backend_type>();
  }

  void collect(param_list<backend_type>& out, const std::string& prefix) {
    encoder_.collect(out, join_name(prefix, "encoder"));
    projector_.collect(out, join_name(prefix, "projector"));
    predictor_.collect(out, join_name(prefix, "predictor"));
  }
  /// BN statistics, and the support set: "support", "support_filled", "support_ptr".
  void collect_buffers(methods_detail::buffer_list<backend_type>& out, const std::string& prefix) {
    methods_detail::module_buffers(encoder_, out, join_name(prefix, "encoder"));
    methods_detail::module_buffers(projector_, out, join_name(prefix, "projector"));
    methods_detail::module_buffers(predictor_, out, join_name(prefix, "predictor"));
    out.emplace_back(join_name(prefix, "support"), support_.rows_buffer());
    out.emplace_back(join_name(prefix, "support_filled"), support_.filled_buffer());
    out.emplace_back(join_name(prefix, "support_ptr"), support_.pointer_buffer());
  }

  /// Data-parallel hooks (dist::data_parallel calls both at construction): this replica's place in
  /// the global batch, and `gather(t)`: every rank's rows of t (n, ...) stacked in rank order.
  void set_replica(int rank, int world_size) { global_.place.set(rank, world_size); }
  void set_batch_gather(std::function<tensor<cpu>(const tensor<cpu>&)> gather)
    requires std::same_as<backend_type, cpu>
  {
    global_.gather = std::move(gather);
  }
  /// Whether the loss and the support set cover every rank's rows (a gather is set and W > 1).
  bool across_ranks() const { return global_.active(); }

  E& encoder() { return encoder_; }
  const E& encoder() const { return encoder_; }
  P& projector() { return projector_; }
  P& head() { return projector_; }
  Q& predictor() { return predictor_; }
  const nnclr& loss() const { return loss_; }
  const nnclr_options& options() const { return opt_; }
  nnclr_support_set<backend_type>& support_set() { return support_; }
  const nnclr_support_set<backend_type>& support_set() const { return support_; }
  /// Whether the latest step took its neighbours from the support set (false: the first step).
  bool last_step_used_support() const { return last_used_support_; }

 private:
  E encoder_;
  P projector_;
  Q predictor_;
  nnclr_options opt_;
  nnclr loss_;
  nnclr_support_set<backend_type> support_;
  tensor<backend_type> pending_;  // z1 of the latest step (every rank's), for after_step
  methods_detail::global_batch global_;  // data-parallel: this replica's place, the gather
  bool last_used_support_ = false;
};

}  // namespace ssl
