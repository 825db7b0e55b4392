#pragma once
// DenseCL's dense contrastive term (Wang et al. 2021, "Dense Contrastive Learning for
// Self-Supervised Visual Pre-Training"; official code WXinlong/DenseCL, models/densecl.py).
//
// Inputs, for N images of S locations (a ResNet's 7x7 map, a ViT's 7x7 patch grid):
//   q  (N, S, C)  dense query projections (the dense head on every query location)
//   k  (N, S, C)  dense key projections (momentum network, stop-gradient)
//   qb (N, S, D)  query backbone features, kb (N, S, D) key backbone features (no gradient)
//   queue (K, C)  the dense negatives (normalised mean dense key projections of earlier images)
//
// Correspondence: the positive key of query location s of image n is key location
//   m(n, s) = argmax_t cos(qb[n, s], kb[n, t])      (ties to the lowest t)
// (densecl_match; the official backbone_sim_matrix.max(dim=2)). Then with qn, kn the rows scaled
// to unit length,
//   l_{n s} = [qn_{n s} . kn_{n m(n, s)}, qn_{n s} . Q_1, ..., qn_{n s} . Q_K] / T
//   L_dense = 1 / (N S) sum_{n, s} [logsumexp(l_{n s}) - l_{n s, 0}]
// i.e. MoCo's InfoNCE (losses/moco.hpp) over the N S query rows with the matched key rows as
// positives and the dense queue as shared negatives; grad_q (N, S, C) only (keys, matching and
// queue under stop-gradient). The official ContrastiveHead is the same cross-entropy with target 0.
//
// densecl_matched_keys(qb, kb, k): the matched key rows (N S, C), row n S + s = k[n, m(n, s)].
// On the device (backend/cuda/densecl.cuh, under nvcc): cosines by one strided-batched GEMM, a
// row argmax (the k-NN selection kernel with k = 1, same tie rule) and one gather kernel; no host
// synchronisation unless the indices are asked for.
#include <concepts>
#include <vector>

#include "../backend/cpu/gemm.hpp"
#include "../core/error.hpp"
#include "detail/row_math.hpp"
#include "moco.hpp"

namespace ssl {

namespace densecl_detail {

/// Both (N, S, D) token batches with the same N and S (D may differ between roles, not here).
template <class X>
void expect_token_pair(const X& qb, const X& kb, const char* who) {
  check<shape_error>(qb.rank() == 3 && qb.dim(0) > 0 && qb.dim(1) > 0 && qb.dim(2) > 0, who,
                     ": expected query backbone tokens (N, S, D), got ", qb.shape());
  check<shape_error>(kb.shape() == qb.shape(), who, ": expected key backbone tokens of the queries' shape ", qb.shape(),
                     ", got ", kb.shape());
}

/// m (N S) host indices in [0, S): the matching of (N, S, D) CPU token batches.
inline std::vector<int64_t> match_cpu(const tensor<cpu>& qb, const tensor<cpu>& kb) {
  const int64_t N = qb.dim(0), S = qb.dim(1), D = qb.dim(2);
  const auto qn = losses_detail::normalize_rows(qb, N * S);
  const auto kn = losses_detail::normalize_rows(kb, N * S);
  std::vector<int64_t> m(size_t(N * S));
  tensor<cpu> sim(shape{N, S, S});
  parallel_for(0, N, [&](int64_t n) {  // sim[n] = qn[n] kn[n]^T (S, S): cosines of every location pair
    float* c = sim.data() + n * S * S;
    ops::gemm(cpu{}, ops::trans::no, ops::trans::yes, S, S, D, 1.0f, qn.z.data() + n * S * D, D,
              kn.z.data() + n * S * D, D, 0.0f, c, S);
    for (int64_t s = 0; s < S; ++s) {
      const float* row = c + s * S;
      int64_t best = 0;
      for (int64_t t = 1; t < S; ++t)
        if (row[t] > row[best]) best = t;  // strict: ties keep the lowest t
      m[size_t(n * S + s)] = best;
    }
  }, 1);
  return m;
}

}  // namespace densecl_detail

/// The dense correspondence of DenseCL: for query location s of image n, the key location of the
/// same image whose backbone feature has the largest cosine with it.
/// qb, kb: (N, S, D) -> (N S) indices in [0, S), row n S + s. Device tensors: computed there, then
/// the indices are downloaded (one synchronisation).
template <class B>
std::vector<int64_t> densecl_match(const tensor<B>& qb, const tensor<B>& kb) {
  densecl_detail::expect_token_pair(qb, kb, "densecl_match");
  if constexpr (std::same_as<B, cpu>) {
    return densecl_detail::match_cpu(qb, kb);
  } else {
    std::vector<int64_t> m;
    const tensor<B> k(shape{qb.dim(0), qb.dim(1), 1}, 0.0f);
    device_densecl_matched_keys(qb, kb, k, &m);
    return m;
  }
}

/// The positive key rows of the dense term: (N S, C), row n S + s = k[n, densecl_match(qb, kb)[n S + s]].
/// qb, kb (N, S, D), k (N, S, C). `match`, when given, receives the indices (on the device: one
/// download).
template <class B>
tensor<B> densecl_matched_keys(const tensor<B>& qb, const tensor<B>& kb, const tensor<B>& k,
                               std::vector<int64_t>* match = nullptr) {
  densecl_detail::expect_token_pair(qb, kb, "densecl_matched_keys");
  check<shape_error>(k.rank() == 3 && k.dim(0) == qb.dim(0) && k.dim(1) == qb.dim(1) && k.dim(2) > 0,
                     "densecl_matched_keys: expected dense keys (", qb.dim(0), ", ", qb.dim(1), ", C), got ", k.shape());
  if constexpr (std::same_as<B, cpu>) {
    const int64_t N = k.dim(0), S = k.dim(1), C = k.dim(2);
    const std::vector<int64_t> m = densecl_detail::match_cpu(qb, kb);
    tensor<cpu> out(shape{N * S, C});
    for (int64_t r = 0; r < N * S; ++r)
      std::copy_n(k.data() + ((r / S) * S + m[size_t(r)]) * C, C, out.data() + r * C);
    if (match) *match = m;
    return out;
  } else {
    return device_densecl_matched_keys(qb, kb, k, match);
  }
}

/// The dense term of DenseCL (see the top of this file). temperature: the official 0.2.
class densecl_dense_loss {
 public:
  explicit densecl_dense_loss(float temperature = 0.2f) : moco_(temperature) {}
  float temperature() const { return moco_.temperature(); }

  /// q, k (N, S, C); qb, kb (N, S, D); queue (K, C). Returns {value, grad_q}: value a float on the
  /// CPU (a (1) device tensor on a device backend), grad_q (N, S, C).
  template <class B>
  auto operator()(const tensor<B>& q, const tensor<B>& k, const tensor<B>& qb, const tensor<B>& kb,
                  const tensor<B>& queue) const {
    check<shape_error>(q.rank() == 3 && q.dim(0) > 0 && q.dim(1) > 0 && q.dim(2) > 0,
                       "densecl_dense_loss: expected dense queries (N, S, C), got ", q.shape());
    check<shape_error>(k.shape() == q.shape(), "densecl_dense_loss: expected dense keys of the queries' shape ",
                       q.shape(), ", got ", k.shape());
    check<shape_error>(qb.rank() == 3 && qb.dim(0) == q.dim(0) && qb.dim(1) == q.dim(1),
                       "densecl_dense_loss: expected backbone tokens (", q.dim(0), ", ", q.dim(1), ", D), got ",
                       qb.shape());
    check<shape_error>(queue.rank() == 2 && queue.dim(1) == q.dim(2) && queue.dim(0) > 0,
                       "densecl_dense_loss: expected a queue (K, ", q.dim(2), "), got ", queue.shape());
    const int64_t N = q.dim(0), S = q.dim(1), C = q.dim(2);
    const tensor<B> pos = densecl_matched_keys(qb, kb, k);  // (N S, C)
    auto r = moco_(q.reshaped(shape{N * S, C}), pos, queue);
    r.grad_q.reshape(q.shape());
    return r;
  }

 private:
  moco moco_;
};

}  // namespace ssl

#if defined(__CUDACC__)
#include "../backend/cuda/densecl.cuh"
#endif
