#pragma once
// MSN's loss (Assran et al. 2022, "Masked Siamese Networks for Label-Efficient Learning"): masked
// anchor views are classified against K learned prototypes and must predict the sharpened
// prototype assignment of an unmasked target view of the same image, with a mean-entropy
// maximisation ("ME-MAX") regulariser that keeps every prototype in use.
//   anchors a (R, d), R = V N: V anchor views of N images, view-major (row v N + n is image n);
//   target  t (N, d): the target network's embeddings of the N images (data: no gradient);
//   prototypes P (K, d).
//   cosine scores  s_a = a^ P^T (R, K),  s_t = t^ P^T (N, K)    x^ = x / max(|x|, 1e-12) per row
//   targets  q_n = softmax(s_t,n / (tau T))       (sharpening: softmax(s / tau)^(1/T), renormalised)
//            [sinkhorn: q = sinkhorn_knopp(log q, 1, iterations), MSN's distributed_sinkhorn on q]
//   anchors  p_r = softmax(s_a,r / tau)
//   L = 1/R sum_r sum_k -q_(r mod N),k log p_rk                  (cross-entropy, every anchor view)
//     + me_max_weight  (sum_k pbar_k log pbar_k + log K)         pbar = 1/R sum_r p_r (ME-MAX >= 0)
//     + entropy_weight 1/R sum_r sum_k -p_rk log p_rk            (MSN's optional per-anchor entropy)
// Gradient (targets held fixed: MSN computes them under no_grad, prototypes included), with z = s_a / tau:
//   dL/dz_rj = 1/R [ p_rj - q_rj + w_me p_rj (log pbar_j - sum_k p_rk log pbar_k)
//                    - w_ent p_rj (log p_rj - sum_k p_rk log p_rk) ],
//   then through the cosine scores and both row normalisations: grad_anchors (R, d), grad_prototypes (K, d).
// Defaults are the official ViT-S/16 config: tau 0.1, T 0.25, ME-MAX weight 1, entropy weight 0,
// Sinkhorn-Knopp on the targets with 3 iterations.
// Data-parallel (the official code's AllReduce of the mean prediction and distributed Sinkhorn-Knopp):
// with a `sinkhorn_group` (host only) the targets are balanced over every replica's target rows and
// pbar is the mean over every replica's anchor rows (its K column sums and the row count summed over
// the replicas); the cross-entropy and entropy stay this replica's row means, so the replicas'
// averaged values and gradients are one process's on the global batch.
// The CPU path sums rows and columns in a fixed order in double (thread-count independent). On a
// device backend (tensor<cuda>, under nvcc: backend/cuda/msn.cuh) the same loss runs there and
// `value` is a (1) device tensor, so the step never waits for it.
//
//   ssl::msn_loss loss;                        // tau 0.1, T 0.25, ME-MAX 1, Sinkhorn 3 iterations
//   auto r = loss(anchors, target, prototypes);  // r.value, r.grad_anchors, r.grad_prototypes, r.parts
#include <cmath>
#include <concepts>
#include <utility>
#include <vector>

#include "../backend/cpu/linear.hpp"
#include "../backend/cpu/weight_norm.hpp"
#include "../core/parallel.hpp"
#include "../core/profile.hpp"
#include "detail/row_math.hpp"
#include "sinkhorn_knopp.hpp"
#if defined(__CUDACC__)
#include "../backend/cuda/linear.cuh"       // the tensor<cuda> overloads the templates below call
#include "../backend/cuda/weight_norm.cuh"
#endif

namespace ssl {

struct msn_loss_options {
  float temperature = 0.1f;          // tau of both softmaxes over the cosine scores
  float sharpen_temperature = 0.25f;  // T: the targets are softmax(s_t / (tau T))
  float me_max_weight = 1.0f;         // mean-entropy maximisation (ME-MAX)
  float entropy_weight = 0.0f;        // per-anchor entropy (MSN: 0, i.e. off)
  bool sinkhorn = true;               // balance the targets over the prototypes (Sinkhorn-Knopp on q)
  int sinkhorn_iterations = 3;
};

/// value: the total loss (a float on the CPU, a (1) device tensor on a device); parts (3): the
/// cross-entropy, ME-MAX and entropy terms unweighted; targets (N, K) the sharpened assignments.
template <class Value, class B = cpu>
struct msn_result_of {
  Value value{};
  tensor<B> grad_anchors;     // (R, d)
  tensor<B> grad_prototypes;  // (K, d)
  tensor<B> targets;          // (N, K), rows sum to 1
  tensor<B> parts;            // (3): cross-entropy, ME-MAX, entropy
};
using msn_result = msn_result_of<float, cpu>;

/// The loss on ready scores: value, d value / d s_a (R, K) and the three terms.
template <class Value, class B = cpu>
struct msn_scores_result_of {
  Value value{};
  tensor<B> grad_scores;  // (R, K)
  tensor<B> parts;        // (3)
};

namespace losses_detail {
/// Validates MSN's inputs on either backend: anchors (V N, d), target (N, d), prototypes (K, d).
inline void check_msn_inputs(const shape& anchors, const shape& target, const shape& prototypes) {
  check<shape_error>(prototypes.rank() == 2 && prototypes[0] > 0 && prototypes[1] > 0,
                     "msn prototypes: expected (K, d) with K, d > 0, got ", prototypes);
  const int64_t d = prototypes[1];
  check<shape_error>(target.rank() == 2 && target[0] > 0 && target[1] == d, "msn target: expected (N, ", d,
                     ") embeddings, got ", target);
  check<shape_error>(anchors.rank() == 2 && anchors[1] == d && anchors[0] > 0 && anchors[0] % target[0] == 0,
                     "msn anchors: expected (V N, ", d, ") embeddings, V >= 1 views of the N = ", target[0],
                     " target images, got ", anchors);
}
/// Validates ready scores: anchor scores (V N, K), targets (N, K).
inline void check_msn_scores(const shape& scores, const shape& targets) {
  check<shape_error>(targets.rank() == 2 && targets[0] > 0 && targets[1] > 0,
                     "msn targets: expected (N, K) probabilities, got ", targets);
  check<shape_error>(scores.rank() == 2 && scores[1] == targets[1] && scores[0] > 0 && scores[0] % targets[0] == 0,
                     "msn anchor scores: expected (V N, ", targets[1], ") for N = ", targets[0], " targets, got ",
                     scores);
}
}  // namespace losses_detail

class msn_loss {
 public:
  explicit msn_loss(const msn_loss_options& o = {}) : opt_(o) {
    losses_detail::expect_positive(o.temperature, "msn temperature");
    losses_detail::expect_positive(o.sharpen_temperature, "msn sharpen temperature");
    check<value_error>(o.me_max_weight >= 0.0f && o.entropy_weight >= 0.0f && std::isfinite(o.me_max_weight) &&
                           std::isfinite(o.entropy_weight),
                       "msn: expected finite non-negative ME-MAX and entropy weights, got ", o.me_max_weight, " and ",
                       o.entropy_weight);
    check<value_error>(!o.sinkhorn || o.sinkhorn_iterations >= 1,
                       "msn: expected at least 1 Sinkhorn-Knopp iteration, got ", o.sinkhorn_iterations);
  }
  const msn_loss_options& options() const { return opt_; }

  /// The whole loss: anchors (V N, d), target (N, d), prototypes (K, d). `group`: the reductions
  /// over data-parallel replicas (host only; see the file comment).
  template <class B>
  auto operator()(const tensor<B>& anchors, const tensor<B>& target, const tensor<B>& prototypes,
                  const sinkhorn_group* group = nullptr) const {
    SSL_PROFILE_SCOPE("msn loss");
    losses_detail::check_msn_inputs(anchors.shape(), target.shape(), prototypes.shape());
    expect_host_group<B>(group);
    tensor<B> anorm, pnorm;
    const tensor<B> ahat = ops::l2_normalize_rows(anchors, anorm);
    const tensor<B> phat = ops::l2_normalize_rows(prototypes, pnorm);
    tensor<B> q = targets_of_unit(target, phat, group);
    auto core = with_targets(ops::linear_forward(ahat, phat, nullptr), q, group);
    // s_a = a^ p^^T: d a^ = ds p^, d p^ = ds^T a^; then both normalisations.
    tensor<B> dphat(prototypes.shape(), 0.0f);
    const tensor<B> dahat = ops::linear_backward(ahat, phat, core.grad_scores, dphat, nullptr);
    using value_type = std::remove_cvref_t<decltype(core.value)>;
    return msn_result_of<value_type, B>{std::move(core.value), ops::l2_normalize_rows_backward(ahat, anorm, dahat),
                                        ops::l2_normalize_rows_backward(phat, pnorm, dphat), std::move(q),
                                        std::move(core.parts)};
  }

  /// The targets (N, K) of target embeddings (N, d) against prototypes (K, d): sharpened softmax of
  /// the cosine scores, then Sinkhorn-Knopp when enabled. No gradient.
  template <class B>
  tensor<B> targets(const tensor<B>& target, const tensor<B>& prototypes, const sinkhorn_group* group = nullptr) const {
    losses_detail::check_msn_inputs(target.shape(), target.shape(), prototypes.shape());
    expect_host_group<B>(group);
    tensor<B> pnorm;
    return targets_of_unit(target, ops::l2_normalize_rows(prototypes, pnorm), group);
  }

  /// The loss on ready anchor scores s_a (V N, K) (cosines) and targets q (N, K) (rows summing to 1);
  /// `group`: pbar over every replica's anchor rows.
  msn_scores_result_of<float, cpu> with_targets(const tensor<cpu>& scores, const tensor<cpu>& q,
                                                const sinkhorn_group* group = nullptr) const {
    losses_detail::check_msn_scores(scores.shape(), q.shape());
    check<value_error>(!group || group->sum, "msn: a sinkhorn_group needs its sum");
    const int64_t R = scores.dim(0), K = scores.dim(1), N = q.dim(0);
    const double inv_tau = 1.0 / double(opt_.temperature), inv_r = 1.0 / double(R);
    const double w_me = opt_.me_max_weight, w_ent = opt_.entropy_weight;
    // log p and p per row, in double
    std::vector<double> logp(size_t(R * K)), p(size_t(R * K));
    parallel_for(0, R, [&](int64_t r) {
      const float* s = scores.data() + r * K;
      const double lse = scaled_lse(s, K, inv_tau);
      for (int64_t k = 0; k < K; ++k) {
        const double l = double(s[k]) * inv_tau - lse;
        logp[size_t(r * K + k)] = l;
        p[size_t(r * K + k)] = std::exp(l);
      }
    }, 4);
    // pbar_k = 1/R sum_r p_rk: columns in chunks, rows in order (deterministic); with a group the
    // column sums and R of every replica (float all-reduce of K + 1 values)
    std::vector<double> pbar(static_cast<size_t>(K), 0.0), log_pbar(static_cast<size_t>(K), 0.0);
    constexpr int64_t column_chunk = 64;
    parallel_for(0, (K + column_chunk - 1) / column_chunk, [&](int64_t c) {
      const int64_t k0 = c * column_chunk, k1 = std::min(K, k0 + column_chunk);
      for (int64_t r = 0; r < R; ++r)
        for (int64_t k = k0; k < k1; ++k) pbar[size_t(k)] += p[size_t(r * K + k)];
    });
    double rows = double(R);
    if (group) {
      std::vector<float> f(static_cast<size_t>(K + 1));
      for (int64_t k = 0; k < K; ++k) f[size_t(k)] = float(pbar[size_t(k)]);
      f[size_t(K)] = float(R);
      group->sum(f.data(), K + 1);
      for (int64_t k = 0; k < K; ++k) pbar[size_t(k)] = double(f[size_t(k)]);
      rows = double(f[size_t(K)]);
    }
    for (int64_t k = 0; k < K; ++k) {
      pbar[size_t(k)] /= rows;
      // an unused prototype (pbar underflows to 0) adds 0 log 0 = 0 to ME-MAX and nothing to the gradient
      log_pbar[size_t(k)] = pbar[size_t(k)] > 0.0 ? std::log(pbar[size_t(k)]) : 0.0;
    }
    msn_scores_result_of<float, cpu> res;
    res.grad_scores = tensor<cpu>(scores.shape());
    std::vector<double> ce(static_cast<size_t>(R)), plogp(static_cast<size_t>(R));
    parallel_for(0, R, [&](int64_t r) {
      const double* pr = p.data() + r * K;
      const double* lr = logp.data() + r * K;
      const float* qr = q.data() + (r % N) * K;
      double a = 0.0, e = 0.0, c = 0.0;
      for (int64_t k = 0; k < K; ++k) {
        a += pr[k] * log_pbar[size_t(k)];
        e += pr[k] * lr[k];
        c -= double(qr[k]) * lr[k];
      }
      float* g = res.grad_scores.data() + r * K;
      const double scale = inv_r * inv_tau;  // d z / d s = 1 / tau
      for (int64_t k = 0; k < K; ++k)
        g[k] = float(scale * (pr[k] - double(qr[k]) + w_me * pr[k] * (log_pbar[size_t(k)] - a) -
                              w_ent * pr[k] * (lr[k] - e)));
      ce[size_t(r)] = c;
      plogp[size_t(r)] = e;
    }, 4);
    double me = std::log(double(K));
    for (int64_t k = 0; k < K; ++k) me += pbar[size_t(k)] * log_pbar[size_t(k)];
    const double cross_entropy = losses_detail::ordered_sum(ce) * inv_r;
    const double entropy = -losses_detail::ordered_sum(plogp) * inv_r;
    res.value = float(cross_entropy + w_me * me + w_ent * entropy);
    res.parts = tensor<cpu>(shape{3});
    res.parts[0] = float(cross_entropy);
    res.parts[1] = float(me);
    res.parts[2] = float(entropy);
    return res;
  }
  template <class B>
    requires(!std::same_as<B, cpu>)
  auto with_targets(const tensor<B>& scores, const tensor<B>& q, const sinkhorn_group* group = nullptr) const {
    expect_host_group<B>(group);
    return device_msn_with_targets(*this, scores, q);
  }

 private:
  /// log sum_k exp(s_k scale) over one row of K scores, max-shifted, in double.
  static double scaled_lse(const float* s, int64_t K, double scale) {
    double m = -INFINITY;
    for (int64_t k = 0; k < K; ++k) m = std::max(m, double(s[k]) * scale);
    double z = 0.0;
    for (int64_t k = 0; k < K; ++k) z += std::exp(double(s[k]) * scale - m);
    return m + std::log(z);
  }
  template <class B>
  static void expect_host_group(const sinkhorn_group* group) {
    check<value_error>(group == nullptr || std::same_as<B, cpu>, "msn: data-parallel reductions are host (cpu) only");
  }
  /// Targets of target embeddings against unit prototypes phat (K, d).
  template <class B>
  tensor<B> targets_of_unit(const tensor<B>& target, const tensor<B>& phat, const sinkhorn_group* group) const {
    tensor<B> tnorm;
    const tensor<B> st = ops::linear_forward(ops::l2_normalize_rows(target, tnorm), phat, nullptr);  // (N, K)
    const float scale = 1.0f / (opt_.temperature * opt_.sharpen_temperature);
    if constexpr (std::same_as<B, cpu>) {
      const int64_t N = st.dim(0), K = st.dim(1);
      tensor<cpu> out(st.shape());  // log q, then q
      parallel_for(0, N, [&](int64_t n) {
        const float* s = st.data() + n * K;
        const double lse = scaled_lse(s, K, scale);
        float* o = out.data() + n * K;
        for (int64_t k = 0; k < K; ++k) {
          const double l = double(s[k]) * scale - lse;
          o[k] = float(opt_.sinkhorn ? l : std::exp(l));
        }
      }, 4);
      // Sinkhorn-Knopp of q itself: exp(log q / 1) is q (up to per-prototype factors, which cancel)
      return opt_.sinkhorn ? sinkhorn_knopp(out, 1.0f, opt_.sinkhorn_iterations, /*check_finite=*/false, group) : out;
    } else {
      return device_msn_targets(*this, st, scale);
    }
  }

  msn_loss_options opt_;
};

}  // namespace ssl

#if defined(__CUDACC__)
#include "../backend/cuda/msn.cuh"
#endif
