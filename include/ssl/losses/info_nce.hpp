#pragma once
// InfoNCE (van den Oord et al. 2018, "Representation Learning with Contrastive Predictive
// Coding"), in the cosine form used by SimCLR/MoCo:
//   d(x, y) = x.y / (|x||y|),  l_i = [d(x_i, y_i+), d(x_i, y_i1-), ..., d(x_i, y_iM-)] / tau,
//   L = 1/N sum_i -log softmax(l_i)_0 = 1/N sum_i [logsumexp(l_i) - l_i0].
// Negatives are either explicit per anchor, (N, M, D), or shared by every anchor, (M, D).
//
// Gradient: g_i = (softmax(l_i) - e_0) / N, then
//   d xn_i = (g_i0 yn_i+ + sum_m g_im yn_im-) / tau,  d yn_i+ = g_i0 xn_i / tau,
//   d yn_im- = g_im xn_i / tau (per anchor) or sum_i g_im xn_i / tau (shared, one GEMM),
// and back through each row normalisation.
#include "detail/row_math.hpp"

namespace ssl {

struct info_nce_result {
  float value = 0;
  tensor<cpu> grad_anchor;     // (N, D)
  tensor<cpu> grad_positive;   // (N, D)
  tensor<cpu> grad_negatives;  // shaped like the negatives
};

namespace losses_detail {

/// Layout of InfoNCE's negatives, checked against anchors (N, D) and positives (N, D):
/// shared (M, D) or per anchor (N, M, D). Shapes only, so the CUDA loss uses the same check.
struct info_nce_negatives {
  bool shared;
  int64_t count;  // M
};
inline info_nce_negatives info_nce_negatives_of(const shape& anchor, const shape& positive, const shape& negatives,
                                                const char* who) {
  const int64_t N = anchor[0], D = anchor[1];
  check<shape_error>(positive == anchor, who, ": expected positives of shape ", anchor, " (as the anchors), got ",
                     positive);
  const bool shared = negatives.rank() == 2;
  check<shape_error>((shared && negatives[1] == D) || (negatives.rank() == 3 && negatives[0] == N && negatives[2] == D),
                     who, ": expected negatives of shape (M, ", D, ") or (", N, ", M, ", D, "), got ", negatives);
  return {shared, shared ? negatives[0] : negatives[1]};
}

/// The InfoNCE computation on raw inputs; grads of positives/negatives only when asked.
/// `scale` multiplies the value and every gradient.
inline info_nce_result info_nce_core(const tensor<cpu>& anchor, const tensor<cpu>& positive,
                                     const tensor<cpu>& negatives, float temperature, float scale, bool grad_positive,
                                     bool grad_negatives, const char* who) {
  expect_embeddings(anchor, who);
  const int64_t N = anchor.dim(0), D = anchor.dim(1);
  const info_nce_negatives layout = info_nce_negatives_of(anchor.shape(), positive.shape(), negatives.shape(), who);
  const bool shared = layout.shared;
  const int64_t M = layout.count;
  const int64_t C = M + 1;
  const float inv_t = 1.0f / temperature;

  const auto an = normalize_rows(anchor, N);
  const auto pn = normalize_rows(positive, N);
  const auto nn = normalize_rows(negatives, shared ? M : N * M);

  // logits (N, 1 + M): column 0 the positive
  tensor<cpu> G(shape{N, C});
  if (shared && M > 0)
    ops::gemm(cpu{}, ops::trans::no, ops::trans::yes, N, M, D, inv_t, an.z.data(), D, nn.z.data(), D, 0.0f,
              G.data() + 1, C);
  std::vector<double> row_loss(static_cast<size_t>(N));
  const float g_scale = scale / float(N);
  parallel_for(0, N, [&](int64_t i) {
    float* l = G.data() + i * C;
    const float* a = an.z.data() + i * D;
    auto dot = [&](const float* y) {
      float s = 0;
      for (int64_t k = 0; k < D; ++k) s += a[k] * y[k];
      return s * inv_t;
    };
    l[0] = dot(pn.z.data() + i * D);
    if (!shared)
      for (int64_t m = 0; m < M; ++m) l[1 + m] = dot(nn.z.data() + (i * M + m) * D);
    const float l0 = l[0];
    const double lse = softmax_inplace(l, C);
    row_loss[size_t(i)] = lse - double(l0);
    for (int64_t j = 0; j < C; ++j) l[j] *= g_scale;
    l[0] -= g_scale;
  }, 16);

  info_nce_result r;
  r.value = float(scale * ordered_sum(row_loss) / double(N));
  tensor<cpu> dan(shape{N, D}), dpn, dnn;
  if (grad_positive) dpn = tensor<cpu>(shape{N, D});
  if (grad_negatives) dnn = tensor<cpu>(nn.z.shape());
  // d an = G[:, 1:] nn / tau (shared: one GEMM) + G[:, 0] pn / tau
  if (shared) {
    if (M > 0)
      ops::gemm(cpu{}, ops::trans::no, ops::trans::no, N, D, M, inv_t, G.data() + 1, C, nn.z.data(), D, 0.0f,
                dan.data(), D);
    else
      dan.zero();
    if (grad_negatives && M > 0)
      ops::gemm(cpu{}, ops::trans::yes, ops::trans::no, M, D, N, inv_t, G.data() + 1, C, an.z.data(), D, 0.0f,
                dnn.data(), D);
  }
  parallel_for(0, N, [&](int64_t i) {
    const float* g = G.data() + i * C;
    const float* a = an.z.data() + i * D;
    const float* p = pn.z.data() + i * D;
    float* da = dan.data() + i * D;
    if (!shared) {
      for (int64_t k = 0; k < D; ++k) da[k] = 0;
      for (int64_t m = 0; m < M; ++m) {
        const float gm = g[1 + m] * inv_t;
        const float* y = nn.z.data() + (i * M + m) * D;
        for (int64_t k = 0; k < D; ++k) da[k] += gm * y[k];
        if (grad_negatives) {
          float* dy = dnn.data() + (i * M + m) * D;
          for (int64_t k = 0; k < D; ++k) dy[k] = gm * a[k];
        }
      }
    }
    const float g0 = g[0] * inv_t;
    for (int64_t k = 0; k < D; ++k) da[k] += g0 * p[k];
    if (grad_positive) {
      float* dp = dpn.data() + i * D;
      for (int64_t k = 0; k < D; ++k) dp[k] = g0 * a[k];
    }
  }, 16);
  r.grad_anchor = normalize_rows_backward(an, dan);
  if (grad_positive) r.grad_positive = normalize_rows_backward(pn, dpn);
  if (grad_negatives) {
    if (M > 0)
      r.grad_negatives = normalize_rows_backward(nn, dnn);
    else
      r.grad_negatives = tensor<cpu>(negatives.shape(), 0.0f);
  }
  return r;
}

}  // namespace losses_detail

class info_nce {
 public:
  explicit info_nce(float temperature = 0.1f) : temperature_(temperature) {
    losses_detail::expect_positive(temperature, "info_nce temperature");
  }
  float temperature() const { return temperature_; }

  // anchor: (N, D), positive: (N, D), negatives: (N, M, D) per anchor or (M, D) shared
  info_nce_result operator()(const tensor<cpu>& anchor, const tensor<cpu>& positive,
                             const tensor<cpu>& negatives) const {
    return losses_detail::info_nce_core(anchor, positive, negatives, temperature_, 1.0f, true, true, "info_nce");
  }

 private:
  float temperature_;
};

}  // namespace ssl
