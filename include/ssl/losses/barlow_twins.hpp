#pragma once
// Barlow Twins (Zbontar et al. 2021, "Barlow Twins: Self-Supervised Learning via Redundancy
// Reduction"):  z1, z2: (N, D) embeddings of two views.
//   zk' = (zk - mean_batch) / sqrt(var_batch + eps)   (BatchNorm1d without affine, biased var)
//   c = z1'^T z2' / N  (D, D),   L = sum_i (1 - c_ii)^2 + lambda sum_{i != j} c_ij^2.
// Gradient: dc_ii = 2 (c_ii - 1), dc_ij = 2 lambda c_ij; d z1' = z2' dc^T / N, d z2' = z1' dc / N;
//   through the batch norm: dz = (dz' - mean_b dz' - z' mean_b(dz' z')) / sqrt(var + eps).
#include "detail/row_math.hpp"

namespace ssl {

struct barlow_twins_result {
  float value = 0;
  tensor<cpu> grad_z1;  // (N, D)
  tensor<cpu> grad_z2;  // (N, D)
};

namespace losses_detail {
/// Column-standardised copy of z (N, D) and the inverse std of each column.
struct standardized_columns {
  tensor<cpu> z;
  std::vector<float> inv_std;
};
inline standardized_columns standardize_columns(const tensor<cpu>& x, double eps, bool unbiased) {
  const int64_t N = x.dim(0), D = x.dim(1);
  standardized_columns s{tensor<cpu>(x.shape()), std::vector<float>(size_t(D))};
  parallel_for(0, D, [&](int64_t k) {
    double m = 0, v = 0;
    for (int64_t i = 0; i < N; ++i) m += x[i * D + k];
    m /= double(N);
    for (int64_t i = 0; i < N; ++i) v += (x[i * D + k] - m) * (x[i * D + k] - m);
    v /= double(unbiased ? N - 1 : N);
    const double inv = 1.0 / std::sqrt(v + eps);
    s.inv_std[size_t(k)] = float(inv);
    for (int64_t i = 0; i < N; ++i) s.z[i * D + k] = float((x[i * D + k] - m) * inv);
  }, 16);
  return s;
}
// Backward of standardize_columns (biased variance): dx = inv_std (dz' - mean dz' - z' mean(dz' z')).
inline tensor<cpu> standardize_columns_backward(const standardized_columns& s, const tensor<cpu>& dzs) {
  const int64_t N = s.z.dim(0), D = s.z.dim(1);
  tensor<cpu> dx(s.z.shape());
  parallel_for(0, D, [&](int64_t k) {
    double mg = 0, mgz = 0;
    for (int64_t i = 0; i < N; ++i) {
      mg += dzs[i * D + k];
      mgz += double(dzs[i * D + k]) * s.z[i * D + k];
    }
    mg /= double(N);
    mgz /= double(N);
    for (int64_t i = 0; i < N; ++i)
      dx[i * D + k] = float(s.inv_std[size_t(k)] * (dzs[i * D + k] - mg - s.z[i * D + k] * mgz));
  }, 16);
  return dx;
}
}  // namespace losses_detail

class barlow_twins {
 public:
  explicit barlow_twins(float lambda = 0.0051f, float bn_eps = 1e-5f) : lambda_(lambda), eps_(bn_eps) {
    check<value_error>(lambda >= 0.0f && std::isfinite(lambda), "barlow_twins lambda: expected a finite value >= 0, got ",
                       lambda);
    losses_detail::expect_positive(bn_eps, "barlow_twins bn_eps");
  }
  float lambda() const { return lambda_; }
  float bn_eps() const { return eps_; }

  // z1, z2: (N, D), N >= 2
  barlow_twins_result operator()(const tensor<cpu>& z1, const tensor<cpu>& z2) const {
    namespace ld = losses_detail;
    ld::expect_embeddings(z1, "barlow_twins z1");
    expect_shape(z2, z1.shape(), "barlow_twins z2");
    const int64_t N = z1.dim(0), D = z1.dim(1);
    check<shape_error>(N >= 2, "barlow_twins: expected a batch of at least 2 rows, got ", z1.shape());
    const auto s1 = ld::standardize_columns(z1, eps_, false);
    const auto s2 = ld::standardize_columns(z2, eps_, false);
    // c = z1'^T z2' / N, turned into dc in place
    tensor<cpu> c(shape{D, D});
    ops::gemm(cpu{}, ops::trans::yes, ops::trans::no, D, D, N, 1.0f / float(N), s1.z.data(), D, s2.z.data(), D, 0.0f,
              c.data(), D);
    std::vector<double> row_loss(static_cast<size_t>(D));
    parallel_for(0, D, [&](int64_t i) {
      float* ci = c.data() + i * D;
      double s = 0;
      for (int64_t j = 0; j < D; ++j) {
        if (j == i) {
          s += double(1 - ci[j]) * (1 - ci[j]);
          ci[j] = 2 * (ci[j] - 1);
        } else {
          s += lambda_ * double(ci[j]) * ci[j];
          ci[j] = 2 * lambda_ * ci[j];
        }
      }
      row_loss[size_t(i)] = s;
    }, 16);
    tensor<cpu> d1(shape{N, D}), d2(shape{N, D});
    const float inv_n = 1.0f / float(N);
    ops::gemm(cpu{}, ops::trans::no, ops::trans::yes, N, D, D, inv_n, s2.z.data(), D, c.data(), D, 0.0f, d1.data(), D);
    ops::gemm(cpu{}, ops::trans::no, ops::trans::no, N, D, D, inv_n, s1.z.data(), D, c.data(), D, 0.0f, d2.data(), D);
    return {float(ld::ordered_sum(row_loss)), ld::standardize_columns_backward(s1, d1),
            ld::standardize_columns_backward(s2, d2)};
  }
  // z1, z2 on a device backend: the same loss there (backend/cuda/barlow_twins.cuh, under nvcc); the
  // result's `value` is a (1) device tensor.
  template <class B>
    requires(!std::same_as<B, cpu>)
  auto operator()(const tensor<B>& z1, const tensor<B>& z2) const {
    return device_barlow_twins(*this, z1, z2);
  }

 private:
  float lambda_, eps_;
};

}  // namespace ssl

#if defined(__CUDACC__)
#include "../backend/cuda/barlow_twins.cuh"
#endif
