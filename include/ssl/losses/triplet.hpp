#pragma once
// Triplet losses (Schroff et al. 2015, "FaceNet"; Hermans et al. 2017, "In Defense of the
// Triplet Loss" for batch-hard mining).
//
// triplet: anchors a, positives p, negatives n, each (N, D):
//   L = 1/N sum_i max(0, d(a_i, p_i) - d(a_i, n_i) + m),
//   d = squared Euclidean |x - y|^2 (default) or cosine distance 1 - cos(x, y).
//   Gradient of an active term: dd_ap = +1/N, dd_an = -1/N; d|x-y|^2/dx = 2 (x - y);
//   d(1 - xn.yn)/dxn = -yn, then back through the normalisation.
//
// triplet_mining: one labelled batch x (N, D), labels (N); pairwise distances D (N, N):
//   batch_all:  every (a, p, n) with y_a = y_p, a != p, y_n != y_a; mean over the terms > 0.
//   batch_hard: per anchor, the farthest positive and the closest negative; mean over anchors
//               that have both.
//   semi_hard:  per positive pair (a, p), the closest negative farther than p (D_an > D_ap),
//               or the farthest negative if none is; mean over positive pairs (FaceNet; as
//               TensorFlow Addons' triplet_semihard_loss).
//   Mining is a selection (no gradient); the gradient flows through the chosen distances.
//
// On a device backend (under nvcc) both run there (backend/cuda/triplet.cuh, triplet_mining.cuh);
// labels stay a host list, checked on the host and uploaded by the op.
#include <concepts>
#include <span>
#include <vector>

#include "detail/row_math.hpp"

namespace ssl {

enum class triplet_distance { squared_euclidean, cosine };

struct triplet_result {
  float value = 0;
  tensor<cpu> grad_anchor;    // (N, D)
  tensor<cpu> grad_positive;  // (N, D)
  tensor<cpu> grad_negative;  // (N, D)
};

class triplet {
 public:
  explicit triplet(float margin = 1.0f, triplet_distance distance = triplet_distance::squared_euclidean)
      : margin_(margin), distance_(distance) {
    check<value_error>(margin >= 0.0f && std::isfinite(margin), "triplet margin: expected a finite value >= 0, got ",
                       margin);
  }
  float margin() const { return margin_; }
  triplet_distance distance() const { return distance_; }

  // anchor, positive, negative: (N, D)
  triplet_result operator()(const tensor<cpu>& anchor, const tensor<cpu>& positive, const tensor<cpu>& negative) const {
    namespace ld = losses_detail;
    ld::expect_embeddings(anchor, "triplet anchor");
    expect_shape(positive, anchor.shape(), "triplet positive");
    expect_shape(negative, anchor.shape(), "triplet negative");
    const int64_t N = anchor.dim(0), D = anchor.dim(1);
    const bool cosine = distance_ == triplet_distance::cosine;
    ld::normalized_rows an, pn, nn;
    if (cosine) {
      an = ld::normalize_rows(anchor, N);
      pn = ld::normalize_rows(positive, N);
      nn = ld::normalize_rows(negative, N);
    }
    const tensor<cpu>& A = cosine ? an.z : anchor;
    const tensor<cpu>& P = cosine ? pn.z : positive;
    const tensor<cpu>& Q = cosine ? nn.z : negative;
    triplet_result r;
    r.grad_anchor = tensor<cpu>(anchor.shape());
    r.grad_positive = tensor<cpu>(anchor.shape());
    r.grad_negative = tensor<cpu>(anchor.shape());
    std::vector<double> row_loss(static_cast<size_t>(N));
    const float g = 1.0f / float(N);
    parallel_for(0, N, [&](int64_t i) {
      const float *a = A.data() + i * D, *p = P.data() + i * D, *q = Q.data() + i * D;
      float *da = r.grad_anchor.data() + i * D, *dp = r.grad_positive.data() + i * D, *dq = r.grad_negative.data() + i * D;
      double d_ap = 0, d_an = 0;
      for (int64_t k = 0; k < D; ++k) {
        if (cosine) {
          d_ap += double(a[k]) * p[k];
          d_an += double(a[k]) * q[k];
        } else {
          d_ap += double(a[k] - p[k]) * (a[k] - p[k]);
          d_an += double(a[k] - q[k]) * (a[k] - q[k]);
        }
      }
      if (cosine) {
        d_ap = 1 - d_ap;
        d_an = 1 - d_an;
      }
      const double l = d_ap - d_an + margin_;
      row_loss[size_t(i)] = l > 0 ? l : 0;
      const bool active = l > 0;
      for (int64_t k = 0; k < D; ++k) {
        if (!active) {
          da[k] = dp[k] = dq[k] = 0;
        } else if (cosine) {  // d/dan of (-an.pn + an.qn)
          da[k] = g * (q[k] - p[k]);
          dp[k] = -g * a[k];
          dq[k] = g * a[k];
        } else {
          dp[k] = -2 * g * (a[k] - p[k]);
          dq[k] = 2 * g * (a[k] - q[k]);
          da[k] = -dp[k] - dq[k];
        }
      }
    }, 64);
    r.value = float(ld::ordered_sum(row_loss) / double(N));
    if (cosine) {
      r.grad_anchor = ld::normalize_rows_backward(an, r.grad_anchor);
      r.grad_positive = ld::normalize_rows_backward(pn, r.grad_positive);
      r.grad_negative = ld::normalize_rows_backward(nn, r.grad_negative);
    }
    return r;
  }
  // anchor, positive, negative: (N, D) on a device backend. `value` is a (1) device tensor.
  template <class B>
    requires(!std::same_as<B, cpu>)
  auto operator()(const tensor<B>& anchor, const tensor<B>& positive, const tensor<B>& negative) const {
    return device_triplet(*this, anchor, positive, negative);
  }

 private:
  float margin_;
  triplet_distance distance_;
};

enum class triplet_strategy { batch_all, batch_hard, semi_hard };

struct triplet_mining_result {
  float value = 0;
  tensor<cpu> grad_x;     // (N, D)
  int64_t triplets = 0;   // terms averaged over (positive terms for batch_all)
};

class triplet_mining {
 public:
  explicit triplet_mining(triplet_strategy strategy = triplet_strategy::batch_hard, float margin = 1.0f,
                          triplet_distance distance = triplet_distance::squared_euclidean)
      : strategy_(strategy), margin_(margin), distance_(distance) {
    check<value_error>(margin >= 0.0f && std::isfinite(margin),
                       "triplet_mining margin: expected a finite value >= 0, got ", margin);
  }
  triplet_strategy strategy() const { return strategy_; }
  float margin() const { return margin_; }
  triplet_distance distance() const { return distance_; }

  // x: (N, D), labels: N class ids
  triplet_mining_result operator()(const tensor<cpu>& x, std::span<const int64_t> labels) const {
    namespace ld = losses_detail;
    ld::expect_embeddings(x, "triplet_mining x");
    const int64_t N = x.dim(0), D = x.dim(1);
    check<shape_error>(int64_t(labels.size()) == N, "triplet_mining labels: expected ", N, " labels, got ",
                       labels.size());
    const bool cosine = distance_ == triplet_distance::cosine;
    ld::normalized_rows xn;
    if (cosine) xn = ld::normalize_rows(x, N);
    const tensor<cpu>& X = cosine ? xn.z : x;

    // Pairwise distances Dm (N, N) from the Gram matrix.
    tensor<cpu> Dm(shape{N, N});
    ops::gemm(cpu{}, ops::trans::no, ops::trans::yes, N, N, D, 1.0f, X.data(), D, X.data(), D, 0.0f, Dm.data(), N);
    std::vector<float> sq(static_cast<size_t>(N));
    for (int64_t i = 0; i < N; ++i) sq[size_t(i)] = Dm[i * N + i];
    for (int64_t i = 0; i < N; ++i)
      for (int64_t j = 0; j < N; ++j) {
        float& d = Dm[i * N + j];
        d = cosine ? 1.0f - d : std::max(0.0f, sq[size_t(i)] + sq[size_t(j)] - 2.0f * d);
      }

    // W accumulates d(sum of active terms)/dDm, symmetrised (Dm is symmetric): +1 on (a, p)
    // and (p, a), -1 on (a, n) and (n, a) for each term > 0; scaled by 1/count at the end.
    tensor<cpu> W(shape{N, N}, 0.0f);
    double total = 0;
    int64_t count = 0;
    auto dist = [&](int64_t i, int64_t j) { return double(Dm[i * N + j]); };
    auto hinge = [&](int64_t a, int64_t p, int64_t n) {
      const double l = dist(a, p) - dist(a, n) + margin_;
      if (l > 0) {
        total += l;
        W[a * N + p] += 1.0f;
        W[p * N + a] += 1.0f;
        W[a * N + n] -= 1.0f;
        W[n * N + a] -= 1.0f;
      }
      return l;
    };
    for (int64_t a = 0; a < N; ++a) {
      const int64_t ya = labels[size_t(a)];
      if (strategy_ == triplet_strategy::batch_hard) {
        int64_t p_star = -1, n_star = -1;
        for (int64_t j = 0; j < N; ++j) {
          if (j == a) continue;
          if (labels[size_t(j)] == ya) {
            if (p_star < 0 || dist(a, j) > dist(a, p_star)) p_star = j;
          } else if (n_star < 0 || dist(a, j) < dist(a, n_star)) {
            n_star = j;
          }
        }
        if (p_star >= 0 && n_star >= 0) {
          hinge(a, p_star, n_star);
          ++count;
        }
        continue;
      }
      for (int64_t p = 0; p < N; ++p) {
        if (p == a || labels[size_t(p)] != ya) continue;
        if (strategy_ == triplet_strategy::batch_all) {
          for (int64_t n = 0; n < N; ++n)
            if (labels[size_t(n)] != ya && hinge(a, p, n) > 0) ++count;
          continue;
        }
        // semi-hard: closest negative with D_an > D_ap, else the farthest negative
        int64_t outside = -1, farthest = -1;
        for (int64_t n = 0; n < N; ++n) {
          if (labels[size_t(n)] == ya) continue;
          if (dist(a, n) > dist(a, p) && (outside < 0 || dist(a, n) < dist(a, outside))) outside = n;
          if (farthest < 0 || dist(a, n) > dist(a, farthest)) farthest = n;
        }
        if (farthest < 0) continue;
        hinge(a, p, outside >= 0 ? outside : farthest);
        ++count;
      }
    }

    triplet_mining_result r;
    r.triplets = count;
    r.value = count > 0 ? float(total / double(count)) : 0.0f;
    r.grad_x = tensor<cpu>(x.shape(), 0.0f);
    if (total == 0) return r;
    const float c = 1.0f / float(count);
    for (int64_t i = 0; i < N * N; ++i) W[i] *= c;
    tensor<cpu> dX(shape{N, D});
    if (cosine) {
      // Dm = 1 - Xn Xn^T  =>  dXn = -W Xn
      ops::gemm(cpu{}, ops::trans::no, ops::trans::no, N, D, N, -1.0f, W.data(), N, X.data(), D, 0.0f, dX.data(), D);
      r.grad_x = ld::normalize_rows_backward(xn, dX);
    } else {
      // Dm_ij = |x_i|^2 + |x_j|^2 - 2 x_i.x_j  =>  dx = 2 (rowsum(W) x - W x)
      ops::gemm(cpu{}, ops::trans::no, ops::trans::no, N, D, N, -2.0f, W.data(), N, X.data(), D, 0.0f, dX.data(), D);
      for (int64_t i = 0; i < N; ++i) {
        double s = 0;
        for (int64_t j = 0; j < N; ++j) s += W[i * N + j];
        for (int64_t k = 0; k < D; ++k) dX[i * D + k] += float(2 * s) * X[i * D + k];
      }
      r.grad_x = std::move(dX);
    }
    return r;
  }
  triplet_mining_result operator()(const tensor<cpu>& x, const std::vector<int64_t>& labels) const {
    return (*this)(x, std::span<const int64_t>(labels));
  }
  // x: (N, D) on a device backend, labels: N host class ids. `value` is a (1) device tensor,
  // `grad_x` a device tensor (N, D).
  template <class B>
    requires(!std::same_as<B, cpu>)
  auto operator()(const tensor<B>& x, std::span<const int64_t> labels) const {
    return device_triplet_mining(*this, x, labels);
  }
  template <class B>
    requires(!std::same_as<B, cpu>)
  auto operator()(const tensor<B>& x, const std::vector<int64_t>& labels) const {
    return device_triplet_mining(*this, x, std::span<const int64_t>(labels));
  }

 private:
  triplet_strategy strategy_;
  float margin_;
  triplet_distance distance_;
};

}  // namespace ssl

#if defined(__CUDACC__)
#include "../backend/cuda/triplet.cuh"
#include "../backend/cuda/triplet_mining.cuh"
#endif
