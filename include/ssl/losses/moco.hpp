#pragma once
// MoCo losses (He et al. 2020; Chen et al. 2020 "MoCo v2"; Chen, Xie, He 2021 "MoCo v3").
//
// moco (v1/v2): queries q (N, D) from the encoder, their positive keys k (N, D) from the
// momentum encoder and a queue (K, D) of negative keys:
//   l_i = [qn_i.kn_i, qn_i.Q_1, ..., qn_i.Q_K] / tau,  L = 1/N sum_i [logsumexp(l_i) - l_i0].
// Keys and queue are under stop-gradient: only grad_q is returned (InfoNCE with shared negatives).
//
// moco_v3: symmetric, in-batch keys, scaled by 2 tau:
//   ctr(q, k) = 2 tau * 1/N sum_i [logsumexp_j (qn_i.kn_j / tau) - qn_i.kn_i / tau],
//   L = ctr(q1, k2) + ctr(q2, k1);  grad_q1, grad_q2 returned, keys stop-gradient.
//
// moco_queue: the fixed-size FIFO of keys; `enqueue(keys)` after the step overwrites the
// oldest rows (ring buffer), storing L2-normalised keys as MoCo does.
#include <concepts>

#include "../core/rng.hpp"
#include "info_nce.hpp"

namespace ssl {

/// keys (B, D) with every row scaled to unit length, as the queue stores them (the device
/// overload: backend/cuda/info_nce.cuh).
inline tensor<cpu> unit_keys(const tensor<cpu>& keys) { return losses_detail::normalize_rows(keys, keys.dim(0)).z; }

class moco_queue {
 public:
  moco_queue() = default;
  /// size K rows of dim D, initialised with random unit vectors (MoCo's random initial queue).
  moco_queue(int64_t size, int64_t dim, uint64_t seed = 0) : keys_(shape{size, dim}) {
    check<value_error>(size > 0 && dim > 0, "moco_queue: expected size > 0 and dim > 0, got size ", size, ", dim ", dim);
    rng g(seed, 0x6d6f636fu);
    for (int64_t i = 0; i < keys_.numel(); ++i) keys_[i] = g.normal();
    keys_ = losses_detail::normalize_rows(keys_, size).z;
  }

  int64_t size() const { return keys_.dim(0); }
  int64_t dim() const { return keys_.dim(1); }
  /// (K, D): the negatives, in storage order (the oldest rows start at `pointer()`).
  const tensor<cpu>& keys() const { return keys_; }
  /// Row where the next enqueue writes.
  int64_t pointer() const { return ptr_; }

  /// keys: (B, D), B <= K. Written at the pointer, wrapping around; the pointer advances by B.
  void enqueue(const tensor<cpu>& keys) {
    check<shape_error>(keys.rank() == 2 && keys.dim(1) == dim() && keys.dim(0) <= size(), "moco_queue::enqueue: expected (B, ",
                       dim(), ") keys with B <= ", size(), ", got ", keys.shape());
    const int64_t B = keys.dim(0), D = dim();
    const auto kn = losses_detail::normalize_rows(keys, B);
    for (int64_t b = 0; b < B; ++b) std::copy_n(kn.z.data() + b * D, D, keys_.data() + ((ptr_ + b) % size()) * D);
    ptr_ = (ptr_ + B) % size();
  }

  /// Restore from a checkpoint: keys (K, D) and the pointer.
  void load(tensor<cpu> keys, int64_t pointer) {
    check<shape_error>(keys.rank() == 2 && keys.dim(0) > 0, "moco_queue::load: expected (K, D) keys, got ", keys.shape());
    check<value_error>(pointer >= 0 && pointer < keys.dim(0), "moco_queue::load: pointer must be in [0, ", keys.dim(0),
                       "), got ", pointer);
    keys_ = std::move(keys);
    ptr_ = pointer;
  }

 private:
  tensor<cpu> keys_;
  int64_t ptr_ = 0;
};

struct moco_result {
  float value = 0;
  tensor<cpu> grad_q;  // (N, D)
};

class moco {
 public:
  explicit moco(float temperature = 0.2f) : temperature_(temperature) {
    losses_detail::expect_positive(temperature, "moco temperature");
  }
  float temperature() const { return temperature_; }

  // q: (N, D), k: (N, D), queue: (K, D)
  moco_result operator()(const tensor<cpu>& q, const tensor<cpu>& k, const tensor<cpu>& queue) const {
    auto r = losses_detail::info_nce_core(q, k, queue, temperature_, 1.0f, false, false, "moco");
    return {r.value, std::move(r.grad_anchor)};
  }
  moco_result operator()(const tensor<cpu>& q, const tensor<cpu>& k, const moco_queue& queue) const {
    check<shape_error>(queue.size() > 0, "moco: the queue is empty (default-constructed)");
    return (*this)(q, k, queue.keys());
  }
  // q, k, queue on a device backend: the same loss there (backend/cuda/info_nce.cuh, under nvcc);
  // the result's `value` is a (1) device tensor, so the step never waits for it.
  template <class B>
    requires(!std::same_as<B, cpu>)
  auto operator()(const tensor<B>& q, const tensor<B>& k, const tensor<B>& queue) const {
    return device_moco(*this, q, k, queue);
  }

 private:
  float temperature_;
};

struct moco_v3_result {
  float value = 0;
  tensor<cpu> grad_q1;  // (N, D)
  tensor<cpu> grad_q2;  // (N, D)
};

class moco_v3 {
 public:
  explicit moco_v3(float temperature = 1.0f) : temperature_(temperature) {
    losses_detail::expect_positive(temperature, "moco_v3 temperature");
  }
  float temperature() const { return temperature_; }

  // q1, q2: (N, D) queries of the two views; k1, k2: (N, D) momentum keys of the two views
  moco_v3_result operator()(const tensor<cpu>& q1, const tensor<cpu>& q2, const tensor<cpu>& k1,
                            const tensor<cpu>& k2) const {
    check<shape_error>(k1.shape() == q1.shape() && k2.shape() == q2.shape(), "moco_v3: expected keys of the queries' shape ",
                       q1.shape(), ", got ", k1.shape(), " and ", k2.shape());
    return (*this)(q1, q2, k1, k2, 0);
  }
  // The same with more keys than queries (data-parallel: the keys of every rank, dist/global_moco_v3.hpp):
  // k1, k2: (M, D), M >= N; query row i's positive is key row first_positive + i, every other key
  // is a negative: logits (N, M), the loss a mean over the N queries.
  moco_v3_result operator()(const tensor<cpu>& q1, const tensor<cpu>& q2, const tensor<cpu>& k1, const tensor<cpu>& k2,
                            int64_t first_positive) const {
    auto a = contrast(q1, k2, first_positive, "moco_v3 (q1, k2)");
    auto b = contrast(q2, k1, first_positive, "moco_v3 (q2, k1)");
    return {a.value + b.value, std::move(a.grad_q), std::move(b.grad_q)};
  }
  // On a device backend (backend/cuda/info_nce.cuh, under nvcc); `value` stays a (1) device tensor.
  template <class B>
    requires(!std::same_as<B, cpu>)
  auto operator()(const tensor<B>& q1, const tensor<B>& q2, const tensor<B>& k1, const tensor<B>& k2) const {
    return device_moco_v3(*this, q1, q2, k1, k2);
  }

 private:
  // ctr(q, k): logits qn kn^T / tau (N, M), row i's target key first + i, scaled by 2 tau.
  moco_result contrast(const tensor<cpu>& q, const tensor<cpu>& k, int64_t first, const char* who) const {
    namespace ld = losses_detail;
    ld::expect_embeddings(q, who);
    check<shape_error>(k.rank() == 2 && k.dim(1) == q.dim(1) && k.dim(0) >= q.dim(0), who, ": expected keys (M, ",
                       q.dim(1), ") with M >= ", q.dim(0), ", got ", k.shape());
    const int64_t N = q.dim(0), D = q.dim(1), M = k.dim(0);
    check<value_error>(first >= 0 && first + N <= M, who, ": the positives' first key row must be in [0, ", M - N,
                       "], got ", first);
    const float inv_t = 1.0f / temperature_, scale = 2.0f * temperature_;
    const auto qn = ld::normalize_rows(q, N);
    const auto kn = ld::normalize_rows(k, M);
    tensor<cpu> G(shape{N, M});
    ops::gemm(cpu{}, ops::trans::no, ops::trans::yes, N, M, D, inv_t, qn.z.data(), D, kn.z.data(), D, 0.0f, G.data(), M);
    std::vector<double> row_loss(static_cast<size_t>(N));
    const float g_scale = scale / float(N);
    parallel_for(0, N, [&](int64_t i) {
      float* l = G.data() + i * M;
      const float li = l[first + i];
      row_loss[size_t(i)] = ld::softmax_inplace(l, M) - double(li);
      for (int64_t j = 0; j < M; ++j) l[j] *= g_scale;
      l[first + i] -= g_scale;
    }, 16);
    tensor<cpu> dqn(shape{N, D});
    ops::gemm(cpu{}, ops::trans::no, ops::trans::no, N, D, M, inv_t, G.data(), M, kn.z.data(), D, 0.0f, dqn.data(), D);
    return {float(scale * ld::ordered_sum(row_loss) / double(N)), ld::normalize_rows_backward(qn, dqn)};
  }

  float temperature_;
};

}  // namespace ssl

#if defined(__CUDACC__)
#include "../backend/cuda/info_nce.cuh"
#endif
