#pragma once
// VICReg (Bardes, Ponce, LeCun 2022, "VICReg: Variance-Invariance-Covariance Regularization"):
//   x, y: (N, D) embeddings of two views;  xc = x - mean_batch(x) (same for y).
//   inv = 1/(N D) sum (x - y)^2
//   var = 1/(2D) sum_d relu(1 - s_x,d) + 1/(2D) sum_d relu(1 - s_y,d),  s_d = sqrt(var_unbiased_d + eps)
//   cov = 1/D sum_{i != j} C_x,ij^2 + 1/D sum_{i != j} C_y,ij^2,  C = xc^T xc / (N - 1)
//   L = sim_coeff inv + std_coeff var + cov_coeff cov   (25, 25, 1; eps 1e-4)
// Gradient: d inv/dx = 2 (x - y)/(N D) = -d inv/dy;
//   d var/dx_nd = -[s_d < 1] xc_nd / (2 D (N - 1) s_d);
//   d cov/dx = 4 xc offdiag(C) / (D (N - 1)).
// (The centring's backward subtracts the column mean of the gradient; both terms above
// are xc times a matrix, whose column means are already 0.)
#include "detail/row_math.hpp"

namespace ssl {

struct vicreg_result {
  float value = 0;
  tensor<cpu> grad_x;  // (N, D)
  tensor<cpu> grad_y;  // (N, D)
};

class vicreg {
 public:
  explicit vicreg(float sim_coeff = 25.0f, float std_coeff = 25.0f, float cov_coeff = 1.0f, float eps = 1e-4f)
      : sim_(sim_coeff), std_(std_coeff), cov_(cov_coeff), eps_(eps) {
    for (float c : {sim_coeff, std_coeff, cov_coeff})
      check<value_error>(c >= 0.0f && std::isfinite(c), "vicreg coefficient: expected a finite value >= 0, got ", c);
    losses_detail::expect_positive(eps, "vicreg eps");
  }

  float sim_coeff() const { return sim_; }
  float std_coeff() const { return std_; }
  float cov_coeff() const { return cov_; }
  float eps() const { return eps_; }

  // x, y: (N, D), N >= 2
  vicreg_result operator()(const tensor<cpu>& x, const tensor<cpu>& y) const {
    namespace ld = losses_detail;
    ld::expect_embeddings(x, "vicreg x");
    expect_shape(y, x.shape(), "vicreg y");
    const int64_t N = x.dim(0), D = x.dim(1);
    check<shape_error>(N >= 2, "vicreg: expected a batch of at least 2 rows, got ", x.shape());
    vicreg_result r;
    double inv = 0;
    r.grad_x = tensor<cpu>(x.shape());
    r.grad_y = tensor<cpu>(x.shape());
    const float g_inv = 2.0f * sim_ / float(N * D);
    for (int64_t i = 0; i < N * D; ++i) {
      const float d = x[i] - y[i];
      inv += double(d) * d;
      r.grad_x[i] = g_inv * d;
      r.grad_y[i] = -g_inv * d;
    }
    inv /= double(N * D);
    const double var_cov = branch(x, r.grad_x, N, D) + branch(y, r.grad_y, N, D);
    r.value = float(sim_ * inv + var_cov);
    return r;
  }
  // x, y on a device backend: the same loss there (backend/cuda/vicreg.cuh, under nvcc); the
  // result's `value` is a (1) device tensor.
  template <class B>
    requires(!std::same_as<B, cpu>)
  auto operator()(const tensor<B>& x, const tensor<B>& y) const {
    return device_vicreg(*this, x, y);
  }

 private:
  // std_coeff * var term + cov_coeff * cov term of one branch; adds its gradient to g.
  double branch(const tensor<cpu>& x, tensor<cpu>& g, int64_t N, int64_t D) const {
    tensor<cpu> xc(x.shape());
    std::vector<float> sd(static_cast<size_t>(D));
    parallel_for(0, D, [&](int64_t k) {
      double m = 0;
      for (int64_t i = 0; i < N; ++i) m += x[i * D + k];
      m /= double(N);
      double v = 0;
      for (int64_t i = 0; i < N; ++i) {
        const double c = x[i * D + k] - m;
        xc[i * D + k] = float(c);
        v += c * c;
      }
      sd[size_t(k)] = float(std::sqrt(v / double(N - 1) + eps_));
    }, 16);
    // C = xc^T xc / (N - 1): (D, D); M = coef_var diag(...) + coef_cov offdiag(C)
    tensor<cpu> C(shape{D, D});
    ops::gemm(cpu{}, ops::trans::yes, ops::trans::no, D, D, N, 1.0f / float(N - 1), xc.data(), D, xc.data(), D, 0.0f,
              C.data(), D);
    double var_term = 0, cov_term = 0;
    for (int64_t i = 0; i < D; ++i) {
      var_term += std::max(0.0, 1.0 - double(sd[size_t(i)]));
      for (int64_t j = 0; j < D; ++j) {
        float& c = C[i * D + j];
        if (i == j) {
          // var gradient: -[s < 1] xc / (2 D (N - 1) s), folded into the diagonal of M
          c = sd[size_t(i)] < 1.0f ? -std_ / (2.0f * float(D) * float(N - 1) * sd[size_t(i)]) : 0.0f;
        } else {
          cov_term += double(c) * c;
          c *= 4.0f * cov_ / (float(D) * float(N - 1));
        }
      }
    }
    // g += xc M
    ops::gemm(cpu{}, ops::trans::no, ops::trans::no, N, D, D, 1.0f, xc.data(), D, C.data(), D, 1.0f, g.data(), D);
    return std_ * var_term / (2.0 * double(D)) + cov_ * cov_term / double(D);
  }

  float sim_, std_, cov_, eps_;
};

}  // namespace ssl

#if defined(__CUDACC__)
#include "../backend/cuda/vicreg.cuh"
#endif
