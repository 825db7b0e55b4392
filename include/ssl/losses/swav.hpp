#pragma once
// SwAV's swapped-prediction loss (Caron et al. 2020, "Unsupervised Learning of Visual Features by
// Contrasting Cluster Assignments").
//
// scores: (V, B, K) prototype scores s_vb = <z_vb / |z_vb|, c_k> of V crops of B images (unit
// prototypes c_k), the A = assign_crops first crops being the ones that get codes (SwAV's
// crops_for_assign = {0, 1}: the two large crops).
//   codes   q_a = sinkhorn_knopp(s_a, epsilon, iterations)       (B, K) per assigned crop a, no gradient
//           (with a queue: Sinkhorn-Knopp over [queue scores of crop a (Q, K); s_a], the last B rows kept)
//   p_vb    = softmax(s_vb / tau)
//   L = 1/A sum_a 1/(V - 1) sum_{v != a} 1/B sum_b sum_k -q_abk log p_vbk
// Every crop predicts the codes of every other assigned crop ("swapped" prediction). This is DINO's
// cross-entropy with the codes as teacher targets (the same pairs and the same 1 / (A (V - 1))
// averaging: losses/dino.hpp), so the loss is sinkhorn_knopp + dino::with_targets, on either backend:
//   d s_vb = (n_v p_vb - sum_{a != v} q_ab) / (tau B A (V - 1)),   n_v = A - [v < A].
// Defaults (official code): tau 0.1, epsilon 0.05, 3 Sinkhorn-Knopp iterations, 2 assigned crops.
//
//   ssl::swav loss;                       // tau 0.1, epsilon 0.05, 3 iterations, crops 0 and 1
//   auto r = loss(scores);                // r.value, r.grad_scores (V, B, K), r.codes (A, B, K)
//   auto r = loss(scores, queue_scores);  // queue_scores (A, Q, K): the queue's scores per crop
//
// Data-parallel (SwAV's distributed_sinkhorn): `codes(scores, queue, group)` with a sinkhorn_group
// balances the prototypes over every replica's rows (losses/sinkhorn_knopp.hpp).
#include <concepts>
#include <type_traits>
#include <utility>

#include "dino.hpp"
#include "loss.hpp"
#include "sinkhorn_knopp.hpp"

namespace ssl {

/// The loss value (a float on the CPU, a (1) device tensor on a device), d value / d scores (V, B, K)
/// and the codes (A, B, K) the assigned crops got (for logging; rows sum to 1).
template <class Value, class B = cpu>
struct swav_result_of {
  Value value{};
  tensor<B> grad_scores;
  tensor<B> codes;
};
using swav_result = swav_result_of<float, cpu>;

class swav {
 public:
  explicit swav(float temperature = 0.1f, float epsilon = 0.05f, int sinkhorn_iterations = 3, int assign_crops = 2)
      : temperature_(temperature), epsilon_(epsilon), iterations_(sinkhorn_iterations), assign_(assign_crops) {
    losses_detail::expect_positive(temperature, "swav temperature");
    losses_detail::expect_positive(epsilon, "swav epsilon (the Sinkhorn-Knopp temperature)");
    check<value_error>(sinkhorn_iterations >= 1, "swav: expected at least 1 Sinkhorn-Knopp iteration, got ",
                       sinkhorn_iterations);
    check<value_error>(assign_crops >= 1, "swav: expected at least 1 crop to assign codes to, got ", assign_crops);
  }

  float temperature() const { return temperature_; }
  float epsilon() const { return epsilon_; }
  int sinkhorn_iterations() const { return iterations_; }
  int assign_crops() const { return assign_; }

  /// scores (V, B, K), V >= 2 and V >= assign_crops.
  template <class B>
  auto operator()(const tensor<B>& scores) const {
    return with_codes(scores, codes(scores));
  }
  /// With a queue: queue_scores (A, Q, K), the scores of Q earlier embeddings per assigned crop,
  /// join each crop's Sinkhorn-Knopp batch (more rows to spread over the K prototypes).
  template <class B>
  auto operator()(const tensor<B>& scores, const tensor<B>& queue_scores) const {
    return with_codes(scores, codes(scores, &queue_scores));
  }

  /// The codes (A, B, K) of the assigned crops: Sinkhorn-Knopp per crop over its B rows (and its
  /// queue rows first, when given; only the B current rows are returned). `group`: the reductions
  /// over data-parallel replicas (host only).
  template <class B>
  tensor<B> codes(const tensor<B>& scores, const tensor<B>* queue_scores = nullptr,
                  const sinkhorn_group* group = nullptr) const {
    const int64_t A = assign_, Bn = check_scores(scores.shape()), K = scores.dim(2);
    int64_t Q = 0;
    if (queue_scores) {
      check<shape_error>(queue_scores->rank() == 3 && queue_scores->dim(0) == A && queue_scores->dim(2) == K,
                         "swav queue scores: expected (", A, ", Q, ", K, "), got ", queue_scores->shape());
      Q = queue_scores->dim(1);
    }
    check<value_error>(group == nullptr || std::same_as<B, cpu>, "swav: data-parallel Sinkhorn-Knopp is host (cpu) only");
    tensor<B> out(shape{A, Bn, K});
    for (int64_t a = 0; a < A; ++a) {
      tensor<B> batch(shape{Q + Bn, K});  // [queue rows of crop a; the B rows of crop a]
      if (Q > 0) tensor<B>::copy_elements(queue_scores->data() + a * Q * K, batch.data(), Q * K);
      tensor<B>::copy_elements(scores.data() + a * Bn * K, batch.data() + Q * K, Bn * K);
      // (no finiteness check: NaN scores give a NaN loss, which the caller sees in the value)
      tensor<B> q = [&] {
        if constexpr (std::same_as<B, cpu>)
          return sinkhorn_knopp(batch, epsilon_, iterations_, /*check_finite=*/false, group);
        else
          return sinkhorn_knopp(batch, epsilon_, iterations_, /*check_finite=*/false);
      }();
      tensor<B>::copy_elements(q.data() + Q * K, out.data() + a * Bn * K, Bn * K);
    }
    return out;
  }

  /// The swapped-prediction cross-entropy against ready codes (A, B, K).
  template <class B>
  auto with_codes(const tensor<B>& scores, tensor<B> codes) const {
    const int64_t Bn = check_scores(scores.shape()), K = scores.dim(2);
    expect_shape(codes, shape{assign_, Bn, K}, "swav codes");
    const dino ce(K, temperature_);  // only its student temperature is used
    auto r = ce.with_targets(scores, codes);
    using value_type = std::remove_cvref_t<decltype(r.value)>;
    return swav_result_of<value_type, B>{std::move(r.value), std::move(r.grad_student), std::move(codes)};
  }

 private:
  /// Validates scores (V, B, K) with V >= max(2, A); returns B.
  int64_t check_scores(const shape& s) const {
    check<shape_error>(s.rank() == 3 && s[1] > 0 && s[2] > 0, "swav scores: expected (V, B, K) prototype scores, got ",
                       s);
    check<shape_error>(s[0] >= 2 && s[0] >= assign_, "swav scores: expected at least 2 crops and the ", assign_,
                       " assigned crops first, got ", s);
    return s[1];
  }

  float temperature_, epsilon_;
  int iterations_, assign_;
};

}  // namespace ssl
