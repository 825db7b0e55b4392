#pragma once
// MoCo v2 (He et al. 2020; Chen et al. 2020) and MoCo v3 (Chen, Xie & He 2021).
//
// moco_v2_method<E, H, L = moco>: query encoder + MLP head; key encoder + head = EMA copies;
// a FIFO queue of K negative keys (L2-normalised), part of the method's state.
//   q = head(enc(v1))              (B, D)  train mode, BN over G groups of B/G images (G = 8)
//   k = head_k(enc_k(v2))          (B, D)  stop-gradient, train mode (batch statistics), rows
//                                          shuffled, BN over G groups, then unshuffled
//   L = moco(q, k, queue)          InfoNCE over [k_i, queue], T = 0.2
// after_step: enqueue k (oldest rows overwritten), then key = m key + (1 - m) query (m 0.999 in
// the paper for 200 ImageNet epochs; 0.99, the default here, for short runs on small data).
// Shuffle-BN on one device (MoCo's shuffle-BN across GPUs; lightly's SplitBatchNorm): the positive
// key is the only key of the current batch among the K queue keys, so if q_i and k_i were
// normalised with statistics of the same images the network could find its positive by the batch
// signature. The query batch is split into G contiguous groups (the loader order is random), the
// key batch is permuted at random (a pure function of seed and step, for exact resume) before
// being split, so q_i and k_i see BN statistics of different image sets.
// key_bn = running: the former single-device variant, keys in eval mode with the query network's
// running statistics; measured on Fashion-MNIST it trains to BELOW the random-init encoder
// (docs/methods/moco.md), kept for comparison only.
// The queue (keys + write pointer) and the shuffle step are listed by collect_buffers.
// Data-parallel (dist::data_parallel gives set_replica and set_batch_gather): the key shuffle runs
// over the global batch of W B images, as MoCo's shuffle-BN across GPUs: rank r computes the keys
// of rows [r B, (r + 1) B) of the shuffled global batch (its G groups), the keys are gathered and
// unshuffled, and each rank keeps its own images' keys. W ranks with bn_groups G then train as one
// process with bn_groups W G (tests/dist/moco_shuffle_bn_test.cpp).
//
// moco_v3_method<E, P, Q, L = moco_v3>: encoder + projector + predictor; momentum encoder +
// projector; symmetric, in-batch keys, no queue:
//   q = pred(proj(enc([v1; v2])))  (2B, D)     k = proj_k(enc_k([v1; v2])) (2B, D), train mode
//   L = moco_v3(q1, q2, k1, k2) = ctr(q1, k2) + ctr(q2, k1), each scaled by 2T
// after_step: m = 1 - (1 - m_base)(cos(pi k / K) + 1) / 2 (m_base 0.99), key = m key + (1 - m) query.
//
// Both take the parts' backend: moco_v2_method<convnet_s<cuda>, projection_mlp<cuda>> keeps the
// queue (a ring buffer of rows, written by device copies) on the GPU, its write position and
// the shuffle step on the host (mirrored in their checkpoint buffers); the key shuffle is one
// gather per direction; the loss value is read back once, after the backward has been queued.
#include <algorithm>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../losses/loss.hpp"
#include "../losses/moco.hpp"
#include "detail/method_parts.hpp"

namespace ssl {

/// How the key network normalises its batch.
enum class moco_key_bn {
  shuffled_groups,  // train mode, keys permuted then BN over bn_groups groups (shuffle-BN, default)
  batch,            // train mode, BN over the whole key batch (leaks the batch: for comparison)
  running,          // eval mode with the query network's running statistics (for comparison)
};

struct moco_v2_options {
  int64_t queue_size = 4096;  // K negatives: the paper's 65536 is more than Fashion-MNIST's 60000 images
  float momentum = 0.99f;     // key-encoder EMA momentum (the paper's 0.999 barely moves in a short run)
  moco_key_bn key_bn = moco_key_bn::shuffled_groups;
  int64_t bn_groups = 8;      // G: BN groups of the query and key batches (1 = whole batch); 32 images
                              // per group at batch 256, as one GPU of the paper's 8
  uint64_t seed = 0;          // initial random queue and key shuffles
  bool shuffle_across_ranks = true;  // data-parallel: shuffle keys over the global batch (false: each
                                     // rank shuffles its own batch)
};

template <class E, class H, class L = moco>
class moco_v2_method {
  static_assert(Encoder<E>, "moco_v2_method<E, H, L>: E must satisfy ssl::Encoder (a Module with feature_dim())");
  static_assert(Head<H>, "moco_v2_method<E, H, L>: H must satisfy ssl::Head (a Module with in_dim(), out_dim(), is_head)");
  static_assert(std::same_as<typename E::backend_type, typename H::backend_type>,
                "moco_v2_method<E, H, L>: encoder and head must use the same backend tag");
  static_assert(Loss<L, tensor<cpu>, tensor<cpu>, tensor<cpu>>,
                "moco_v2_method<E, H, L>: L must satisfy ssl::Loss on (queries (N, D), keys (N, D), queue (K, D))");

 public:
  using backend_type = typename E::backend_type;

  moco_v2_method(E encoder, H head, moco_v2_options o = {}, L loss = L{0.2f})
      : encoder_(std::move(encoder)), key_encoder_(encoder_), head_(std::move(head)), key_head_(head_),
        loss_(std::move(loss)), opt_(o) {
    check<shape_error>(encoder_.feature_dim() == head_.in_dim(), "moco_v2: the encoder gives features of size ",
                       encoder_.feature_dim(), " but the head expects in_dim ", head_.in_dim());
    check<value_error>(o.queue_size > 0, "moco_v2: queue_size must be > 0, got ", o.queue_size);
    check<value_error>(o.bn_groups >= 1, "moco_v2: bn_groups must be >= 1, got ", o.bn_groups);
    methods_detail::expect_momentum(o.momentum, "moco_v2");
    queue_ = to_backend<backend_type>(moco_queue(o.queue_size, head_.out_dim(), o.seed).keys());
  }

  /// views: two (B, C, H, W) batches of the same shape: queries from view 0, keys from view 1.
  /// A pure function of the views and the state: the key shuffle changes only in after_step.
  step_stats train_step(const std::vector<tensor<backend_type>>& views) {
    methods_detail::expect_same_views(views, 2, "moco_v2");
    const int64_t B = views[0].dim(0), G = opt_.bn_groups;
    check<shape_error>(B <= queue_size(), "moco_v2: batch of ", B, " images is larger than the queue (", queue_size(),
                       " keys)");
    check<shape_error>(G == 1 || B >= 2 * G, "moco_v2: a batch of ", B, " images cannot be split into bn_groups = ", G,
                       " BN groups of at least 2 images");
    step_keys_all_ranks_ = tensor<backend_type>();
    keys_ = compute_keys(views[1]);  // across ranks: also fills step_keys_all_ranks_
    // queries: encoder + head per group, so BN statistics are per group; loss on all B rows
    using enc_saved = decltype(encoder_.forward(views[0]).saved);
    using head_saved = decltype(head_.forward(std::declval<tensor<backend_type>>()).saved);
    std::vector<enc_saved> hs(static_cast<size_t>(G));
    std::vector<head_saved> zs(static_cast<size_t>(G));
    std::vector<tensor<backend_type>> qs(static_cast<size_t>(G));
    for (int64_t g = 0; g < G; ++g) {
      auto h = encoder_.forward(G == 1 ? views[0] : methods_detail::rows(views[0], group_begin(B, g), group_begin(B, g + 1)));
      auto z = head_.forward(h.y);
      hs[size_t(g)] = std::move(h.saved);
      zs[size_t(g)] = std::move(z.saved);
      qs[size_t(g)] = std::move(z.y);
    }
    std::vector<const tensor<backend_type>*> parts;
    for (const auto& q : qs) parts.push_back(&q);
    const tensor<backend_type> q = G == 1 ? qs[0] : concat_batch(parts);
    auto r = loss_(q, keys_, queue_);
    for (int64_t g = 0; g < G; ++g) {
      const tensor<backend_type> dq =
          G == 1 ? r.grad_q : methods_detail::rows(r.grad_q, group_begin(B, g), group_begin(B, g + 1));
      encoder_.backward(std::move(hs[size_t(g)]), head_.backward(zs[size_t(g)], dq));  // releases as it goes
    }
    const float loss = host_loss(r.value);  // read last: on a device the step is queued by now
    expect_finite_loss(loss, "moco_v2");
    return {loss};
  }

  /// The keys (B, D) of a key-view batch, un-normalised, in the batch's row order, as train_step
  /// computes them (key_bn mode, groups, this step's shuffle). Updates the key network's BN
  /// running statistics in the train-mode variants (they are not used).
  tensor<backend_type> compute_keys(const tensor<backend_type>& x) {
    const int64_t B = x.dim(0), G = opt_.bn_groups;
    if (opt_.key_bn == moco_key_bn::running) return key_head_.infer(key_encoder_.infer(x));
    if (opt_.key_bn == moco_key_bn::batch) return key_head_.forward(key_encoder_.forward(x).y).y;
    if (shuffles_across_ranks()) return keys_shuffled_across_ranks(x);  // also with G = 1: MoCo's one group per GPU
    if (G == 1) return key_head_.forward(key_encoder_.forward(x).y).y;
    const std::vector<int64_t> perm = key_permutation(B);
    // shuffled batch: row j holds image perm[j]; groups are contiguous in shuffled order
    const tensor<backend_type> ks = grouped_keys(methods_detail::gather_rows(x, perm));
    // unshuffle: key row perm[j] <- shuffled row j, i.e. row i <- shuffled row inverse[i]
    return methods_detail::gather_rows(ks, inverse_of(perm));
  }

  /// Data-parallel hooks (dist::data_parallel calls both at construction): this replica's place in
  /// the global batch, and `gather(t)`: every rank's rows of t (n, ...) stacked in rank order (W n, ...).
  void set_replica(int rank, int world_size) { replica_.set(rank, world_size); }
  void set_batch_gather(std::function<tensor<backend_type>(const tensor<backend_type>&)> gather) {
    gather_ = std::move(gather);
  }
  /// Whether compute_keys shuffles over the global batch (a gather is set, W > 1, shuffle_across_ranks).
  bool shuffles_across_ranks() const {
    return opt_.shuffle_across_ranks && replica_.world_size > 1 && bool(gather_) &&
           opt_.key_bn == moco_key_bn::shuffled_groups;
  }

  /// This step's key shuffle: a permutation of [0, B), a pure function of (seed, step).
  std::vector<int64_t> key_permutation(int64_t B) const {
    std::vector<int64_t> perm(static_cast<size_t>(B));
    for (int64_t i = 0; i < B; ++i) perm[size_t(i)] = i;
    rng g = rng(opt_.seed, 0x6b657973u).fork(uint64_t(step_.get()));
    for (int64_t i = B - 1; i > 0; --i) std::swap(perm[size_t(i)], perm[g.below(uint32_t(i + 1))]);  // Fisher-Yates
    return perm;
  }

  /// Data-parallel hook (dist::data_parallel calls it before after_step): this step's keys become
  /// `gather(keys)`, the keys of every rank's batch in rank order, so every rank's queue grows by
  /// the global batch and the queues stay identical (MoCo's concat_all_gather before enqueueing).
  /// With the key shuffle across ranks the step already gathered them all: no second gather.
  template <class Gather>
  void gather_step_keys(Gather&& gather) {
    if (keys_.rank() != 2) return;
    keys_ = step_keys_all_ranks_.rank() == 2 ? std::move(step_keys_all_ranks_) : gather(keys_);
    step_keys_all_ranks_ = tensor<backend_type>();
  }

  /// Enqueues the step's keys, then moves the key network towards the query network.
  void after_step(const step_info&) {
    if (keys_.rank() == 2) enqueue(keys_);  // none when after_step runs without a step
    keys_ = tensor<backend_type>();
    step_.set(step_.get() + 1);
    methods_detail::ema_module(key_encoder_, encoder_, opt_.momentum);
    methods_detail::ema_module(key_head_, head_, opt_.momentum);
    if (opt_.key_bn == moco_key_bn::running) {  // eval-mode keys normalise with the query network's statistics
      methods_detail::copy_buffers(key_encoder_, encoder_);
      methods_detail::copy_buffers(key_head_, head_);
    }
  }

  /// keys (B, D): normalised and written at the pointer, wrapping around (FIFO).
  void enqueue(const tensor<backend_type>& keys) {
    check<shape_error>(keys.rank() == 2 && keys.dim(1) == queue_.dim(1) && keys.dim(0) <= queue_size(),
                       "moco_v2::enqueue: expected (B, ", queue_.dim(1), ") keys with B <= ", queue_size(), ", got ",
                       keys.shape());
    const int64_t B = keys.dim(0), D = keys.dim(1), K = queue_size();
    const tensor<backend_type> kn = unit_keys(keys);
    // rows [ptr, ptr + B) of the ring: at most two contiguous runs, [ptr, K) then [0, rest)
    const int64_t ptr = pointer(), first = std::min(B, K - ptr);
    check<value_error>(ptr >= 0 && ptr < K, "moco_v2::enqueue: queue_ptr must be in [0, ", K, "), got ", ptr);
    tensor<backend_type>::copy_elements(kn.data(), queue_.data() + ptr * D, first * D);
    tensor<backend_type>::copy_elements(kn.data() + first * D, queue_.data(), (B - first) * D);
    pointer_.set((ptr + B) % K);
  }

  void collect(param_list<backend_type>& out, const std::string& prefix) {
    encoder_.collect(out, join_name(prefix, "encoder"));
    head_.collect(out, join_name(prefix, "head"));
  }
  /// BN statistics, the key network, and the queue ("queue" (K, D), "queue_ptr" (1)).
  void collect_buffers(methods_detail::buffer_list<backend_type>& out, const std::string& prefix) {
    methods_detail::module_buffers(encoder_, out, join_name(prefix, "encoder"));
    methods_detail::module_buffers(head_, out, join_name(prefix, "head"));
    methods_detail::teacher_buffers(key_encoder_, out, join_name(prefix, "key_encoder"));
    methods_detail::teacher_buffers(key_head_, out, join_name(prefix, "key_head"));
    out.emplace_back(join_name(prefix, "queue"), &queue_);
    out.emplace_back(join_name(prefix, "queue_ptr"), pointer_.buffer());
    out.emplace_back(join_name(prefix, "shuffle_step"), step_.buffer());
  }

  E& encoder() { return encoder_; }
  const E& encoder() const { return encoder_; }
  H& head() { return head_; }
  E& key_encoder() { return key_encoder_; }
  H& key_head() { return key_head_; }
  /// (K, D) normalised negatives in storage order; the next enqueue writes at pointer().
  const tensor<backend_type>& queue() const { return queue_; }
  int64_t queue_size() const { return queue_.dim(0); }
  int64_t pointer() const { return pointer_.get(); }
  float momentum() const { return opt_.momentum; }
  const moco_v2_options& options() const { return opt_; }
  const L& loss() const { return loss_; }

 private:
  // first row of group g of a batch of B rows split into bn_groups near-equal groups
  int64_t group_begin(int64_t B, int64_t g) const { return g * B / opt_.bn_groups; }

  // keys (B, D) of a shuffled batch xs (B, C, H, W), BN statistics per contiguous group
  tensor<backend_type> grouped_keys(const tensor<backend_type>& xs) {
    const int64_t B = xs.dim(0), G = opt_.bn_groups;
    std::vector<tensor<backend_type>> ks(static_cast<size_t>(G));
    std::vector<const tensor<backend_type>*> parts;
    for (int64_t g = 0; g < G; ++g) {
      ks[size_t(g)] =
          key_head_.forward(key_encoder_.forward(methods_detail::rows(xs, group_begin(B, g), group_begin(B, g + 1))).y).y;
      parts.push_back(&ks[size_t(g)]);
    }
    return concat_batch(parts);
  }

  static std::vector<int64_t> inverse_of(const std::vector<int64_t>& perm) {
    std::vector<int64_t> inverse(perm.size());
    for (size_t j = 0; j < perm.size(); ++j) inverse[size_t(perm[j])] = int64_t(j);
    return inverse;
  }

  // Shuffle-BN across ranks. x (B, C, H, W) is rank r's shard, rows [r B, (r + 1) B) of the global
  // batch X (W B, ...). perm: the step's permutation of [0, W B), the same on every rank.
  //   rank r: keys of X[perm[r B .. (r + 1) B)] over its G groups        (B, D)
  //   gathered over ranks: row j = key of image perm[j]                  (W B, D)
  //   every rank's keys in rank order: row j <- shuffled row inverse[j]  (W B, D), kept for the queue
  //   own keys: rows [r B, (r + 1) B) of those                           (B, D)
  tensor<backend_type> keys_shuffled_across_ranks(const tensor<backend_type>& x) {
    const int64_t B = x.dim(0), first = replica_.first_row(B);
    const tensor<backend_type> all_images = gather_(x);
    check<shape_error>(all_images.rank() >= 1 && all_images.dim(0) == B * replica_.world_size,
                       "moco_v2: the batch gather returned ", all_images.shape(), " for ", replica_.world_size,
                       " ranks of ", B, " images");
    const std::vector<int64_t> perm = key_permutation(B * replica_.world_size);
    const std::vector<int64_t> mine(perm.begin() + first, perm.begin() + first + B);
    const tensor<backend_type> all_keys = gather_(grouped_keys(methods_detail::gather_rows(all_images, mine)));
    step_keys_all_ranks_ = methods_detail::gather_rows(all_keys, inverse_of(perm));
    return methods_detail::rows(step_keys_all_ranks_, first, first + B);
  }

  E encoder_, key_encoder_;
  H head_, key_head_;
  L loss_;
  moco_v2_options opt_;
  tensor<backend_type> queue_, keys_;
  tensor<backend_type> step_keys_all_ranks_;  // key shuffle across ranks: every rank's keys (W B, D), rank order
  methods_detail::counter_buffer<backend_type> pointer_, step_;  // checkpoint buffers "queue_ptr", "shuffle_step"
  methods_detail::replica_place replica_;  // data-parallel: this replica's place in the global batch
  std::function<tensor<backend_type>(const tensor<backend_type>&)> gather_;  // data-parallel: rows of all ranks
};

struct moco_v3_options {
  float momentum_base = 0.99f;  // key-network momentum at step 0
  bool cosine_momentum = true;  // raise it to 1 along a cosine over the planned steps
};

template <class E, class P, class Q = P, class L = moco_v3>
class moco_v3_method {
  static_assert(Encoder<E>, "moco_v3_method<E, P, Q, L>: E must satisfy ssl::Encoder (a Module with feature_dim())");
  static_assert(Head<P>, "moco_v3_method<E, P, Q, L>: P (projector) must satisfy ssl::Head");
  static_assert(Head<Q>, "moco_v3_method<E, P, Q, L>: Q (predictor) must satisfy ssl::Head");
  static_assert(std::same_as<typename E::backend_type, typename P::backend_type> &&
                    std::same_as<typename E::backend_type, typename Q::backend_type>,
                "moco_v3_method<E, P, Q, L>: encoder, projector and predictor must use the same backend tag");
  static_assert(Loss<L, tensor<cpu>, tensor<cpu>, tensor<cpu>, tensor<cpu>>,
                "moco_v3_method<E, P, Q, L>: L must satisfy ssl::Loss on (q1, q2, k1, k2), each (N, D)");

 public:
  using backend_type = typename E::backend_type;

  moco_v3_method(E encoder, P projector, Q predictor, moco_v3_options o = {}, L loss = L{1.0f})
      : encoder_(std::move(encoder)), key_encoder_(encoder_), projector_(std::move(projector)),
        key_projector_(projector_), predictor_(std::move(predictor)), loss_(std::move(loss)), opt_(o),
        m_(o.momentum_base) {
    check<shape_error>(encoder_.feature_dim() == projector_.in_dim(), "moco_v3: the encoder gives features of size ",
                       encoder_.feature_dim(), " but the projector expects in_dim ", projector_.in_dim());
    check<shape_error>(projector_.out_dim() == predictor_.in_dim(), "moco_v3: the projector gives ",
                       projector_.out_dim(), "-d outputs but the predictor expects in_dim ", predictor_.in_dim());
    check<shape_error>(predictor_.out_dim() == projector_.out_dim(), "moco_v3: the predictor gives ",
                       predictor_.out_dim(), "-d queries but the keys (projector outputs) are ", projector_.out_dim(),
                       "-d");
    methods_detail::expect_momentum(o.momentum_base, "moco_v3");
  }

  /// views: two (B, C, H, W) batches of the same shape.
  step_stats train_step(const std::vector<tensor<backend_type>>& views) {
    methods_detail::expect_same_views(views, 2, "moco_v3");
    const int64_t B = views[0].dim(0);
    const tensor<backend_type> x = concat_batch({&views[0], &views[1]});
    auto h = encoder_.forward(x);
    auto z = projector_.forward(h.y);
    auto q = predictor_.forward(z.y);
    const tensor<backend_type> k = key_projector_.forward(key_encoder_.forward(x).y).y;  // train mode, no backward
    namespace md = methods_detail;
    auto r = loss_(md::rows(q.y, 0, B), md::rows(q.y, B, 2 * B), md::rows(k, 0, B), md::rows(k, B, 2 * B));
    const tensor<backend_type> dq = concat_batch({&r.grad_q1, &r.grad_q2});
    encoder_.backward(std::move(h.saved), projector_.backward(z.saved, predictor_.backward(q.saved, dq)));
    const float loss = host_loss(r.value);  // read last: on a device the step is queued by now
    expect_finite_loss(loss, "moco_v3");
    return {loss};
  }

  void after_step(const step_info& info) {
    m_ = opt_.cosine_momentum ? methods_detail::cosine_to_one(opt_.momentum_base, info.progress()) : opt_.momentum_base;
    methods_detail::ema_module(key_encoder_, encoder_, m_);
    methods_detail::ema_module(key_projector_, projector_, m_);
  }

  void collect(param_list<backend_type>& out, const std::string& prefix) {
    encoder_.collect(out, join_name(prefix, "encoder"));
    projector_.collect(out, join_name(prefix, "projector"));
    predictor_.collect(out, join_name(prefix, "predictor"));
  }
  void collect_buffers(methods_detail::buffer_list<backend_type>& out, const std::string& prefix) {
    methods_detail::module_buffers(encoder_, out, join_name(prefix, "encoder"));
    methods_detail::module_buffers(projector_, out, join_name(prefix, "projector"));
    methods_detail::module_buffers(predictor_, out, join_name(prefix, "predictor"));
    methods_detail::teacher_buffers(key_encoder_, out, join_name(prefix, "key_encoder"));
    methods_detail::teacher_buffers(key_projector_, out, join_name(prefix, "key_projector"));
  }

  E& encoder() { return encoder_; }
  const E& encoder() const { return encoder_; }
  P& projector() { return projector_; }
  Q& predictor() { return predictor_; }
  E& key_encoder() { return key_encoder_; }
  P& key_projector() { return key_projector_; }
  /// The momentum used by the latest after_step (momentum_base before the first).
  float momentum() const { return m_; }
  const L& loss() const { return loss_; }

 private:
  E encoder_, key_encoder_;
  P projector_, key_projector_;
  Q predictor_;
  L loss_;
  moco_v3_options opt_;
  float m_;
};

}  // namespace ssl
