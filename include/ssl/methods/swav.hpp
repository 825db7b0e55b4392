#pragma once
// SwAV (Caron et al. 2020, "Unsupervised Learning of Visual Features by Contrasting Cluster
// Assignments"): online clustering with swapped prediction, multi-crop.
//
// Parts: encoder E, projector H (SwAV's projection_head: Linear, BN, ReLU, Linear), prototypes
// C (K, D) (heads/swav_prototypes.hpp). views: V crops of B images, the A = assign_crops first
// ones (the large crops) get codes; crops may differ in size (multi-crop: 2 x 224 + 6 x 96 px).
// Per step:
//   C <- rows of C normalised to unit length
//   h = encoder(crops)             once per resolution group (crops of one shape concatenated)
//   z = projector(h)               (V B, D), one call on all crops (BN over every crop, as the code)
//   s = normalize(z) C^T           (V, B, K) scores
//   q_a = sinkhorn_knopp([queue_a C^T; s_a], epsilon)   last B rows, a < A, no gradient
//   L = swav(s, q) = 1/A sum_a 1/(V - 1) sum_{v != a} CE(q_a, softmax(s_v / tau))   (losses/swav.hpp)
// backward through prototypes, projector and encoder; while step < freeze_prototypes_steps the
// prototypes get no gradient and are marked frozen (the optimizer skips them; official code: 313
// iterations).
// Queue (queue_length Q > 0, for batches small next to K): after the steps from queue_start_step
// on, the normalised embeddings of the assigned crops enter a FIFO of Q rows per crop (after_step);
// once it is full its rows join each crop's Sinkhorn-Knopp batch (their codes are dropped), as the
// official code from epoch 15 with 3840 rows.
// Defaults (official code): tau 0.1, epsilon 0.05, 3 iterations, 2 assigned crops, freeze 313.
// The queue (and its fill count and write position) and the step count are checkpoint buffers.
//
// Data-parallel (host only): under dist::data_parallel (which hands over set_replica and
// set_batch_gather) the codes are those of the global batch, as SwAV's distributed_sinkhorn: the
// Sinkhorn-Knopp's prototype sums, maxima and row count are reduced over the ranks (through the batch
// gather; dist::sync_sinkhorn_knopp(method, comm) sets a communicator's all-reduce instead). Each
// replica keeps a queue of its own rows (the official code's queue per GPU); W ranks of B images
// train as one process of W B (tests/dist/sinkhorn_data_parallel_test.cpp, no BN in the projector
// or with SyncBN).
// The backend is the parts': swav_method<convnet_s<cuda>, projection_mlp<cuda>> runs on the GPU
// (device Sinkhorn-Knopp and cross-entropy), the loss read back last.
#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../heads/projection_mlp.hpp"
#include "../heads/swav_prototypes.hpp"
#include "../losses/swav.hpp"
#include "detail/method_parts.hpp"
#include "detail/replica_place.hpp"
#include "detail/sinkhorn_sync.hpp"

namespace ssl {

struct swav_options {
  int assign_crops = 2;               // the first crops get codes (crops_for_assign {0, 1})
  float temperature = 0.1f;           // tau of the predicted softmax
  float epsilon = 0.05f;              // Sinkhorn-Knopp's entropic temperature
  int sinkhorn_iterations = 3;
  int64_t freeze_prototypes_steps = 313;  // prototypes frozen for the first steps (0: never)
  int64_t queue_length = 0;           // rows per assigned crop (0: no queue; official 3840)
  int64_t queue_start_step = 0;       // the queue fills from this step on (official: epoch 15)
};

template <class E, class H = projection_mlp<typename E::backend_type>>
class swav_method {
  static_assert(Encoder<E>, "swav_method<E, H>: E must satisfy ssl::Encoder (a Module with feature_dim())");
  static_assert(Head<H>, "swav_method<E, H>: H must satisfy ssl::Head (a Module with in_dim(), out_dim(), is_head)");
  static_assert(std::same_as<typename E::backend_type, typename H::backend_type>,
                "swav_method<E, H>: encoder and projector must use the same backend tag");

 public:
  using backend_type = typename E::backend_type;

  swav_method(E encoder, H projector, swav_prototypes<backend_type> prototypes, const swav_options& o = {})
      : encoder_(std::move(encoder)), projector_(std::move(projector)), prototypes_(std::move(prototypes)), opt_(o),
        loss_(o.temperature, o.epsilon, o.sinkhorn_iterations, o.assign_crops) {
    check<shape_error>(encoder_.feature_dim() == projector_.in_dim(), "swav: the encoder gives features of size ",
                       encoder_.feature_dim(), " but the projector expects in_dim ", projector_.in_dim());
    check<shape_error>(projector_.out_dim() == prototypes_.dim(), "swav: the projector gives embeddings of size ",
                       projector_.out_dim(), " but the prototypes have dimension ", prototypes_.dim());
    check<value_error>(o.freeze_prototypes_steps >= 0 && o.queue_length >= 0 && o.queue_start_step >= 0,
                       "swav: expected non-negative freeze_prototypes_steps, queue_length and queue_start_step, got ",
                       o.freeze_prototypes_steps, ", ", o.queue_length, ", ", o.queue_start_step);
    if (o.queue_length > 0)
      queue_ = tensor<backend_type>(shape{o.assign_crops, o.queue_length, prototypes_.dim()}, 0.0f);
  }

  /// views: V >= 2 crops, each a (B, C, h, w) batch, the assign_crops assigned crops first.
  step_stats train_step(const std::vector<tensor<backend_type>>& views) {
    const int64_t V = int64_t(views.size()), A = opt_.assign_crops;
    check<value_error>(V >= 2 && V >= A, "swav: expected at least 2 crops with the ", A,
                       " assigned crops first, got ", V, " crop(s)");
    const int64_t B = views[0].dim(0);
    for (int64_t v = 0; v < V; ++v)
      check<shape_error>(views[size_t(v)].rank() == 4 && views[size_t(v)].dim(0) == B, "swav: crop ", v,
                         " should be a (", B, ", C, h, w) batch like crop 0, got ", views[size_t(v)].shape());
    const int64_t F = encoder_.feature_dim(), D = prototypes_.dim(), K = prototypes_.count();
    const int64_t step = step_.get();

    prototypes_.normalize();

    // Encoder: once per resolution group (first-appearance order of the crop shapes).
    std::vector<std::vector<int64_t>> groups;
    for (int64_t v = 0; v < V; ++v) {
      auto it = std::find_if(groups.begin(), groups.end(),
                             [&](const auto& gr) { return views[size_t(gr[0])].shape() == views[size_t(v)].shape(); });
      if (it == groups.end())
        groups.push_back({v});
      else
        it->push_back(v);
    }
    std::vector<typename E::saved_type> saved(groups.size());
    tensor<backend_type> feats(shape{V * B, F});  // in crop order
    for (size_t k = 0; k < groups.size(); ++k) {
      std::vector<const tensor<backend_type>*> parts;
      for (int64_t v : groups[k]) parts.push_back(&views[size_t(v)]);
      tensor<backend_type> cat;
      const tensor<backend_type>& x = parts.size() == 1 ? *parts[0] : (cat = concat_batch(parts));
      auto o = encoder_.forward(x);
      saved[k] = std::move(o.saved);
      for (size_t j = 0; j < groups[k].size(); ++j)
        tensor<backend_type>::copy_elements(o.y.data() + int64_t(j) * B * F, feats.data() + groups[k][j] * B * F,
                                            B * F);
    }

    // Projector on every crop, prototype scores, codes, swapped prediction.
    auto z = projector_.forward(feats);
    auto p = prototypes_.forward(z.y);
    tensor<backend_type> scores = std::move(p.y);
    scores.reshape(shape{V, B, K});
    const bool use_queue = queue_full();
    tensor<backend_type> queue_scores;
    if (use_queue) {
      queue_scores = prototypes_.score_normalized(queue_.reshaped(shape{A * opt_.queue_length, D}));
      queue_scores.reshape(shape{A, opt_.queue_length, K});
    }
    tensor<backend_type> q = [&] {
      if constexpr (std::same_as<backend_type, cpu>)
        return loss_.codes(scores, use_queue ? &queue_scores : nullptr, sinkhorn_.group(replica_.world_size));
      else
        return loss_.codes(scores, use_queue ? &queue_scores : nullptr);
    }();
    auto r = loss_.with_codes(scores, std::move(q));
    r.grad_scores.reshape(shape{V * B, K});

    // Backward: prototypes (unless frozen), projector, encoder per group.
    const tensor<backend_type> dz = prototypes_.backward(p.saved, r.grad_scores);
    const bool freeze = step < opt_.freeze_prototypes_steps;
    if (freeze) prototypes_.weight().grad.zero();
    prototypes_.set_frozen(freeze);
    const tensor<backend_type> dfeats = projector_.backward(z.saved, dz);
    for (size_t k = 0; k < groups.size(); ++k) {
      const int64_t n = int64_t(groups[k].size());
      tensor<backend_type> dg(shape{n * B, F});
      for (int64_t j = 0; j < n; ++j)
        tensor<backend_type>::copy_elements(dfeats.data() + groups[k][size_t(j)] * B * F, dg.data() + j * B * F,
                                            B * F);
      encoder_.backward(std::move(saved[k]), dg);
    }

    // The assigned crops' normalised embeddings wait for after_step to enter the queue.
    if (opt_.queue_length > 0) pending_ = methods_detail::rows(p.saved.n, 0, A * B);
    last_used_queue_ = use_queue;

    const float loss = host_loss(r.value);  // read last: on a device the step is queued by now
    expect_finite_loss(loss, "swav");
    return {loss};
  }

  /// After the optimizer step: the step's assigned-crop embeddings enter the queue (from
  /// queue_start_step on), the step count advances.
  void after_step(const step_info&) {
    const int64_t step = step_.get();
    if (opt_.queue_length > 0 && pending_.rank() == 2 && step >= opt_.queue_start_step) enqueue(pending_);
    pending_ = tensor<backend_type>();
    step_.set(step + 1);
  }

  void collect(param_list<backend_type>& out, const std::string& prefix) {
    encoder_.collect(out, join_name(prefix, "encoder"));
    projector_.collect(out, join_name(prefix, "projection_head"));
    prototypes_.collect(out, join_name(prefix, "prototypes"));
  }
  void collect_buffers(methods_detail::buffer_list<backend_type>& out, const std::string& prefix) {
    methods_detail::module_buffers(encoder_, out, join_name(prefix, "encoder"));
    methods_detail::module_buffers(projector_, out, join_name(prefix, "projection_head"));
    if (opt_.queue_length > 0) {
      out.emplace_back(join_name(prefix, "queue"), &queue_);
      out.emplace_back(join_name(prefix, "queue_filled"), filled_.buffer());
      out.emplace_back(join_name(prefix, "queue_ptr"), pointer_.buffer());
    }
    out.emplace_back(join_name(prefix, "step"), step_.buffer());
  }

  /// Data-parallel Sinkhorn-Knopp (SwAV's distributed_sinkhorn): the codes over every replica's
  /// rows, reduced by `g` (dist::sync_sinkhorn_knopp sets it); an empty g: this replica's rows only
  /// (dist::unsync_sinkhorn_knopp). Without either, data_parallel's batch gather does the reductions.
  /// Host (cpu) only.
  void set_sinkhorn_group(sinkhorn_group g) { sinkhorn_.set_group(std::move(g), std::same_as<backend_type, cpu>, "swav_method"); }
  /// Back to the default (the batch gather's reductions under data_parallel).
  void set_sinkhorn_automatic() { sinkhorn_.set_automatic(); }
  /// Whether the codes are balanced over the ranks' rows together.
  bool sinkhorn_synchronized() const { return sinkhorn_.synchronized(replica_.world_size); }
  /// Data-parallel hooks (dist::data_parallel calls both at construction): this replica's place in
  /// the global batch, and `gather(t)`: every rank's rows of t (n, ...) stacked in rank order.
  void set_replica(int rank, int world_size) { replica_.set(rank, world_size); }
  void set_batch_gather(methods_detail::sinkhorn_sync::gather_fn gather)
    requires std::same_as<backend_type, cpu>
  {
    sinkhorn_.set_gather(std::move(gather));
  }

  E& encoder() { return encoder_; }
  const E& encoder() const { return encoder_; }
  H& projector() { return projector_; }
  H& head() { return projector_; }
  swav_prototypes<backend_type>& prototypes() { return prototypes_; }
  const swav& loss() const { return loss_; }
  const swav_options& options() const { return opt_; }
  /// Steps taken (after_step calls), restored from checkpoints.
  int64_t step_count() const { return step_.get(); }
  /// The queue (A, Q, D) of normalised embeddings (rank 0 without a queue), its filled rows per crop.
  const tensor<backend_type>& queue() const { return queue_; }
  int64_t queue_filled() const { return filled_.get(); }
  bool queue_full() const { return opt_.queue_length > 0 && filled_.get() >= opt_.queue_length; }
  /// Whether the latest step's codes used the queue.
  bool last_step_used_queue() const { return last_used_queue_; }

 private:
  /// rows (A B, D), crop a's B rows at [a B, (a + 1) B), written at the pointer of each crop's FIFO
  /// (wrapping; at most the last Q rows of a batch larger than the queue are kept).
  void enqueue(const tensor<backend_type>& rows) {
    const int64_t A = opt_.assign_crops, Q = opt_.queue_length, D = prototypes_.dim(), B = rows.dim(0) / A;
    const int64_t n = std::min(B, Q), skip = B - n, ptr = pointer_.get();
    const int64_t first = std::min(n, Q - ptr);
    for (int64_t a = 0; a < A; ++a) {
      const float* src = rows.data() + (a * B + skip) * D;
      float* dst = queue_.data() + a * Q * D;
      tensor<backend_type>::copy_elements(src, dst + ptr * D, first * D);
      tensor<backend_type>::copy_elements(src + first * D, dst, (n - first) * D);
    }
    pointer_.set((ptr + n) % Q);
    filled_.set(std::min(Q, filled_.get() + n));
  }

  E encoder_;
  H projector_;
  swav_prototypes<backend_type> prototypes_;
  swav_options opt_;
  swav loss_;
  tensor<backend_type> queue_;    // (A, Q, D) normalised embeddings, FIFO per assigned crop
  tensor<backend_type> pending_;  // (A B, D) of the latest step, for after_step
  methods_detail::counter_buffer<backend_type> filled_, pointer_, step_;  // buffers "queue_filled", "queue_ptr", "step"
  methods_detail::sinkhorn_sync sinkhorn_;  // whose rows the codes balance (data-parallel, cpu only)
  methods_detail::replica_place replica_;   // data-parallel: this replica's place in the global batch
  bool last_used_queue_ = false;
};

}  // namespace ssl
