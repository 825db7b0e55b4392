#pragma once
// DenseCL (Wang, Zhang, Shen, Kong & Li 2021, "Dense Contrastive Learning for Self-Supervised
// Visual Pre-Training"; official code WXinlong/DenseCL: models/densecl.py, necks.py DenseCLNeck).
// MoCo v2 with a second, dense contrastive term between the locations of the two views.
//
// densecl_method<E, H, DH>: a token encoder E (ssl::vit: forward_tokens / backward_tokens /
// infer_tokens / pool), a global head H and a dense head DH (both MoCo v2 MLPs, D -> 2048 -> ReLU
// -> 128 without BN: the neck's mlp and its 1x1-conv mlp2, a 1x1 conv being a linear map applied at
// every location), momentum copies of all three, and two FIFO queues of K unit rows.
// For views x1 (queries) and x2 (keys), B images of S patch locations, D-d tokens:
//   t   = enc.forward_tokens(x1)              (B, 1 + S, D)   [CLS; patches]
//   qb  = t[:, 1:]                            (B, S, D)       query backbone features
//   q   = head(pool(t))                       (B, Cg)         pool: the encoder's own (mean of the
//                                                             patches = the official avgpool; or [CLS])
//   qd  = dense_head(qb)                      (B, S, Cd)      per location
//   t'  = enc_k.infer_tokens(x2); kb = t'[:, 1:]              stop-gradient, likewise
//   k   = head_k(pool(t')), kd = dense_head_k(kb)             (B, Cg), (B, S, Cd)
//   L_global = moco(q, k, queue)              InfoNCE over [k_i, queue], T        (losses/moco.hpp)
//   L_dense  = densecl_dense_loss(qd, kd, qb, kb, queue2):   positive of location s of image n is
//              kd[n, argmax_t cos(qb[n, s], kb[n, t])], negatives queue2, mean over B S rows
//                                                                                   (losses/densecl.hpp)
//   L = (1 - lambda) L_global + lambda L_dense
// Gradients reach the query encoder and heads only; the matching is not differentiated.
// after_step: enqueue k into queue and k2 = mean_s kd[:, s] into queue2 (both stored L2-normalised;
// the official k2 = avgpool2 of the dense key map, normalised), then every key part = m key +
// (1 - m) query part. (The official code updates the key encoder at the start of the next forward:
// the same order of operations.)
// No BatchNorm anywhere in the recipe (ViT + the BN-free DenseCL necks), so no shuffle-BN: heads with
// BN would see keys with batch statistics of the key batch (MoCo's leak, methods/moco.hpp).
// Data-parallel: not offered. The queues would have to receive every rank's keys; set_replica throws
// for more than one replica instead of letting each rank's queues drift apart.
// Backends: the parts' tag; densecl_method<vit<cuda>, projection_mlp<cuda>> keeps both queues on the
// GPU (device copies into the ring), the matching on the GPU (backend/cuda/densecl.cuh), their write
// positions on the host (mirrored in checkpoint buffers); the loss values are read back once the
// backward has been queued.
#include <concepts>
#include <string>
#include <utility>
#include <vector>

#include "../encoders/vit.hpp"
#include "../heads/projection_mlp.hpp"
#include "../losses/densecl.hpp"
#include "../losses/loss.hpp"
#include "../losses/moco.hpp"
#include "detail/method_parts.hpp"

namespace ssl {

struct densecl_options {
  int64_t queue_size = 65536;  // K, both queues: official queue_len 65536 (more than Fashion-MNIST's
                               // 60000 images: the example uses 4096)
  float momentum = 0.999f;     // key-network EMA momentum: official 0.999 (the example: 0.99 for short runs)
  float temperature = 0.2f;    // T of both terms: official ContrastiveHead temperature 0.2
  float loss_lambda = 0.5f;    // lambda: official loss_lambda 0.5, L = (1 - lambda) L_global + lambda L_dense
  uint64_t seed = 0;           // the random initial queues
};

namespace densecl_detail {

/// x (N, S, C) -> (N, C): the mean over the S tokens of every image.
template <class B>
tensor<B> mean_tokens(const tensor<B>& x) {
  const int64_t N = x.dim(0), S = x.dim(1), C = x.dim(2);
  if constexpr (std::same_as<B, cpu>) {
    tensor<cpu> y(shape{N, C}, 0.0f);
    for (int64_t n = 0; n < N; ++n) {
      float* o = y.data() + n * C;
      for (int64_t s = 0; s < S; ++s)
        for (int64_t c = 0; c < C; ++c) o[c] += x.data()[(n * S + s) * C + c];
      for (int64_t c = 0; c < C; ++c) o[c] /= float(S);
    }
    return y;
  } else {
    return device_densecl_mean_tokens(x);
  }
}

/// Adjoint of mean_tokens, accumulated: dx (N, S, C) += dy[n] / S at every token of image n.
template <class B>
void add_mean_backward(tensor<B>& dx, const tensor<B>& dy) {
  const int64_t N = dx.dim(0), S = dx.dim(1), C = dx.dim(2);
  if constexpr (std::same_as<B, cpu>) {
    const float w = 1.0f / float(S);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s)
        for (int64_t c = 0; c < C; ++c) dx.data()[(n * S + s) * C + c] += dy.data()[n * C + c] * w;
  } else {
    device_densecl_add_mean_backward(dx, dy);
  }
}

/// keys (B, C) normalised and written into the ring `queue` (K, C) at `ptr`, wrapping around
/// (at most two contiguous runs, [ptr, K) then [0, rest)); the pointer advances by B.
template <class B>
void enqueue_ring(tensor<B>& queue, counter_buffer<B>& ptr_buf, const tensor<B>& keys, const char* who) {
  check<shape_error>(keys.rank() == 2 && keys.dim(1) == queue.dim(1) && keys.dim(0) <= queue.dim(0), who,
                     ": expected (B, ", queue.dim(1), ") keys with B <= ", queue.dim(0), ", got ", keys.shape());
  const int64_t Bk = keys.dim(0), D = keys.dim(1), K = queue.dim(0), ptr = ptr_buf.get();
  check<value_error>(ptr >= 0 && ptr < K, who, ": the queue pointer must be in [0, ", K, "), got ", ptr);
  const tensor<B> kn = unit_keys(keys);
  const int64_t first = std::min(Bk, K - ptr);
  tensor<B>::copy_elements(kn.data(), queue.data() + ptr * D, first * D);
  tensor<B>::copy_elements(kn.data() + first * D, queue.data(), (Bk - first) * D);
  ptr_buf.set((ptr + Bk) % K);
}

}  // namespace densecl_detail

template <class E = vit<>, class H = projection_mlp<typename E::backend_type>, class DH = H>
class densecl_method {
  static_assert(Encoder<E>, "densecl_method<E, H, DH>: E must satisfy ssl::Encoder (a Module with feature_dim())");
  static_assert(Head<H>, "densecl_method<E, H, DH>: H (global head) must satisfy ssl::Head");
  static_assert(Head<DH>, "densecl_method<E, H, DH>: DH (dense head) must satisfy ssl::Head");
  static_assert(std::same_as<typename E::backend_type, typename H::backend_type> &&
                    std::same_as<typename E::backend_type, typename DH::backend_type>,
                "densecl_method<E, H, DH>: encoder and heads must use the same backend tag");
  static_assert(requires(E e, const E ce, const tensor<typename E::backend_type>& x) {
    e.forward_tokens(x);
    e.backward_tokens(e.forward_tokens(x).saved, x);
    ce.infer_tokens(x);
    { ce.pool() } -> std::same_as<vit_pool>;
  }, "densecl_method<E, H, DH>: E must be a ViT-like token encoder with forward_tokens / backward_tokens / "
     "infer_tokens / pool() (e.g. ssl::vit)");

 public:
  using backend_type = typename E::backend_type;
  using T = tensor<backend_type>;

  densecl_method(E encoder, H head, DH dense_head, densecl_options o = {})
      : encoder_(std::move(encoder)), key_encoder_(encoder_), head_(std::move(head)), key_head_(head_),
        dense_head_(std::move(dense_head)), key_dense_head_(dense_head_), opt_(check_options(o)),
        global_loss_(o.temperature), dense_loss_(o.temperature) {
    check<shape_error>(encoder_.feature_dim() == head_.in_dim(), "densecl: the encoder gives features of size ",
                       encoder_.feature_dim(), " but the global head expects in_dim ", head_.in_dim());
    check<shape_error>(encoder_.feature_dim() == dense_head_.in_dim(), "densecl: the encoder gives tokens of size ",
                       encoder_.feature_dim(), " but the dense head expects in_dim ", dense_head_.in_dim());
    queue_ = to_backend<backend_type>(moco_queue(o.queue_size, head_.out_dim(), o.seed).keys());
    dense_queue_ = to_backend<backend_type>(moco_queue(o.queue_size, dense_head_.out_dim(), o.seed + 1).keys());
  }

  /// views: two (B, C, H, W) batches of the same shape: queries from view 0, keys from view 1.
  /// A pure function of the views and the state (no randomness inside the step).
  step_stats train_step(const std::vector<T>& views) {
    SSL_PROFILE_SCOPE("densecl step");
    methods_detail::expect_same_views(views, 2, "densecl");
    const int64_t Bn = views[0].dim(0);
    check<shape_error>(Bn <= queue_size(), "densecl: batch of ", Bn, " images is larger than the queue (",
                       queue_size(), " keys)");
    const float lambda = opt_.loss_lambda;

    // keys: momentum network, no saved state, no gradient
    const key_set ks = compute_keys(views[1]);
    const int64_t S = ks.backbone.dim(1), D = encoder_.feature_dim(), Cd = dense_head_.out_dim();

    // queries
    auto t = encoder_.forward_tokens(views[0]);                   // (B, 1 + S, D)
    const int64_t Tn = t.y.dim(1);
    const T qb = ops::slice_tokens(t.y, 1, S);                     // (B, S, D)
    auto zg = head_.forward(pool(t.y, qb));                        // (B, Cg)
    auto zd = dense_head_.forward(qb.reshaped(shape{Bn * S, D}));  // (B S, Cd)
    auto rg = global_loss_(zg.y, ks.global, queue_);
    auto rd = dense_loss_(zd.y.reshaped(shape{Bn, S, Cd}), ks.dense, qb, ks.backbone, dense_queue_);
    methods_detail::scale_in_place(rg.grad_q, 1.0f - lambda);
    methods_detail::scale_in_place(rd.grad_q, lambda);
    const T dpool = head_.backward(zg.saved, rg.grad_q);                                  // (B, D)
    T dqb = dense_head_.backward(zd.saved, rd.grad_q.reshaped(shape{Bn * S, Cd}));        // (B S, D)
    dqb.reshape(shape{Bn, S, D});
    encoder_.backward_tokens(t.saved, pool_backward(std::move(dqb), dpool, Tn));
    keys_ = ks.global;
    dense_keys_ = densecl_detail::mean_tokens(ks.dense);  // official k2: the mean dense key of each image
    // read last: on a device the step is queued by now
    last_global_ = host_loss(rg.value);
    last_dense_ = host_loss(rd.value);
    const float loss = (1.0f - lambda) * last_global_ + lambda * last_dense_;
    expect_finite_loss(loss, "densecl");
    return {loss};
  }

  /// What the key network gives for a key view (B, C, H, W), as train_step computes it.
  struct key_set {
    T backbone;  // (B, S, D) patch tokens of the key encoder
    T global;    // (B, Cg)   global key (un-normalised)
    T dense;     // (B, S, Cd) dense key projections (un-normalised)
  };
  key_set compute_keys(const T& x) {
    const T tk = key_encoder_.infer_tokens(x);  // (B, 1 + S, D)
    check<shape_error>(tk.rank() == 3 && tk.dim(1) >= 2, "densecl: expected key tokens (B, 1 + S, D) with S >= 1, got ",
                       tk.shape());
    const int64_t Bn = tk.dim(0), S = tk.dim(1) - 1, D = tk.dim(2);
    key_set k;
    k.backbone = ops::slice_tokens(tk, 1, S);
    k.global = key_head_.forward(pool(tk, k.backbone)).y;  // train mode, as the official key network
    k.dense = key_dense_head_.forward(k.backbone.reshaped(shape{Bn * S, D})).y;
    k.dense.reshape(shape{Bn, S, dense_head_.out_dim()});
    return k;
  }

  /// The key location matched to each query location (B S indices in [0, S)) for these views with
  /// the current networks: the positives train_step uses (exactly, unless the encoder has drop path:
  /// the query tokens here are inference-mode).
  std::vector<int64_t> match(const T& query_view, const T& key_view) {
    const T qt = encoder_.infer_tokens(query_view);
    const int64_t S = qt.dim(1) - 1;
    return densecl_match(ops::slice_tokens(qt, 1, S), compute_keys(key_view).backbone);
  }

  /// Enqueues the step's keys (global into queue(), mean dense into dense_queue()), then moves the
  /// key network towards the query network.
  void after_step(const step_info&) {
    if (keys_.rank() == 2) {  // none when after_step runs without a step
      enqueue(keys_, dense_keys_);
    }
    keys_ = T();
    dense_keys_ = T();
    methods_detail::ema_module(key_encoder_, encoder_, opt_.momentum);
    methods_detail::ema_module(key_head_, head_, opt_.momentum);
    methods_detail::ema_module(key_dense_head_, dense_head_, opt_.momentum);
  }

  /// global (B, Cg), dense (B, Cd): normalised and written at the queues' pointers (FIFO ring).
  void enqueue(const T& global, const T& dense) {
    check<shape_error>(global.rank() == 2 && dense.rank() == 2 && global.dim(0) == dense.dim(0),
                       "densecl::enqueue: expected global (B, Cg) and dense (B, Cd) keys of the same B, got ",
                       global.shape(), " and ", dense.shape());
    densecl_detail::enqueue_ring(queue_, pointer_, global, "densecl::enqueue (queue)");
    densecl_detail::enqueue_ring(dense_queue_, dense_pointer_, dense, "densecl::enqueue (dense queue)");
  }

  /// Not offered: refuses more than one replica (the queues would need every rank's keys).
  void set_replica(int rank, int world_size) {
    check<value_error>(world_size <= 1, "densecl: data-parallel training is not supported (got replica ", rank,
                       " of ", world_size, "): the queues would need the keys of every rank");
  }

  void collect(param_list<backend_type>& out, const std::string& prefix) {
    encoder_.collect(out, join_name(prefix, "encoder"));
    head_.collect(out, join_name(prefix, "head"));
    dense_head_.collect(out, join_name(prefix, "dense_head"));
  }
  /// The key network and both queues ("queue" (K, Cg), "queue_ptr", "dense_queue" (K, Cd),
  /// "dense_queue_ptr"), and any module buffers.
  void collect_buffers(methods_detail::buffer_list<backend_type>& out, const std::string& prefix) {
    methods_detail::module_buffers(encoder_, out, join_name(prefix, "encoder"));
    methods_detail::module_buffers(head_, out, join_name(prefix, "head"));
    methods_detail::module_buffers(dense_head_, out, join_name(prefix, "dense_head"));
    methods_detail::teacher_buffers(key_encoder_, out, join_name(prefix, "key_encoder"));
    methods_detail::teacher_buffers(key_head_, out, join_name(prefix, "key_head"));
    methods_detail::teacher_buffers(key_dense_head_, out, join_name(prefix, "key_dense_head"));
    out.emplace_back(join_name(prefix, "queue"), &queue_);
    out.emplace_back(join_name(prefix, "queue_ptr"), pointer_.buffer());
    out.emplace_back(join_name(prefix, "dense_queue"), &dense_queue_);
    out.emplace_back(join_name(prefix, "dense_queue_ptr"), dense_pointer_.buffer());
  }

  E& encoder() { return encoder_; }
  const E& encoder() const { return encoder_; }
  H& head() { return head_; }
  DH& dense_head() { return dense_head_; }
  E& key_encoder() { return key_encoder_; }
  H& key_head() { return key_head_; }
  DH& key_dense_head() { return key_dense_head_; }
  /// (K, Cg) / (K, Cd) unit rows in storage order; the next enqueue writes at pointer() / dense_pointer().
  const T& queue() const { return queue_; }
  const T& dense_queue() const { return dense_queue_; }
  int64_t queue_size() const { return queue_.dim(0); }
  int64_t pointer() const { return pointer_.get(); }
  int64_t dense_pointer() const { return dense_pointer_.get(); }
  const densecl_options& options() const { return opt_; }
  /// The two terms of the latest train_step (before the lambda weighting).
  float last_global_loss() const { return last_global_; }
  float last_dense_loss() const { return last_dense_; }

 private:
  static const densecl_options& check_options(const densecl_options& o) {
    check<value_error>(o.queue_size > 0, "densecl: queue_size must be > 0, got ", o.queue_size);
    methods_detail::expect_momentum(o.momentum, "densecl");
    check<value_error>(o.temperature > 0.0f, "densecl: temperature must be > 0, got ", o.temperature);
    check<value_error>(o.loss_lambda >= 0.0f && o.loss_lambda <= 1.0f, "densecl: loss_lambda must be in [0, 1], got ",
                       o.loss_lambda);
    return o;
  }

  // The global feature of tokens t (B, 1 + S, D) whose patch rows are `patches` (B, S, D): the
  // encoder's pooling ([CLS] row, or the mean of the patches).
  T pool(const T& t, const T& patches) const {
    if (encoder_.pool() == vit_pool::mean) return densecl_detail::mean_tokens(patches);
    T f = ops::slice_tokens(t, 0, 1);
    f.reshape(shape{t.dim(0), t.dim(2)});
    return f;
  }
  // dtokens (B, 1 + S, D) from the patch rows' gradient dpatches (B, S, D) and the pooled feature's dpool (B, D).
  T pool_backward(T dpatches, const T& dpool, int64_t Tn) const {
    if (encoder_.pool() == vit_pool::mean) {
      densecl_detail::add_mean_backward(dpatches, dpool);
      return ops::unslice_tokens(dpatches, Tn, 1);
    }
    return ops::residual_add(ops::unslice_tokens(dpatches, Tn, 1),
                             ops::unslice_tokens(dpool.reshaped(shape{dpool.dim(0), 1, dpool.dim(1)}), Tn, 0));
  }

  E encoder_, key_encoder_;
  H head_, key_head_;
  DH dense_head_, key_dense_head_;
  densecl_options opt_;
  moco global_loss_;
  densecl_dense_loss dense_loss_;
  T queue_, dense_queue_;  // (K, Cg), (K, Cd) unit rows
  T keys_, dense_keys_;    // this step's keys, enqueued by after_step
  methods_detail::counter_buffer<backend_type> pointer_, dense_pointer_;  // "queue_ptr", "dense_queue_ptr"
  float last_global_ = 0, last_dense_ = 0;
};

}  // namespace ssl
