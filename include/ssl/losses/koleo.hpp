#pragma once
// KoLeo regulariser (Sablayrolles et al. 2019, "Spreading vectors for similarity search";
// used by DINOv2, Oquab et al. 2023, with weight 0.1 applied by the method):
//   zn = x / |x| (eps 1e-8), j(i) = argmax_{j != i} zn_i.zn_j (nearest neighbour),
//   r_i = |zn_i - zn_j(i) + eps| (torch's pairwise_distance), L = -1/N sum_i log(r_i + eps).
// Gradient: with u_i = zn_i - zn_j(i) + eps, dL/du_i = -u_i / (N r_i (r_i + eps));
//   d zn_i += dL/du_i, d zn_j(i) -= dL/du_i; then back through the normalisation.
//   The neighbour choice is a selection (no gradient).
#include "detail/row_math.hpp"

namespace ssl {

struct koleo_result {
  float value = 0;
  tensor<cpu> grad_x;  // (N, D)
};

class koleo {
 public:
  explicit koleo(float eps = 1e-8f) : eps_(eps) { losses_detail::expect_positive(eps, "koleo eps"); }

  float eps() const { return eps_; }

  // x: (N, D) on a device backend (backend/cuda/koleo.cuh, under nvcc); `value` a (1) device tensor.
  template <class B>
    requires(!std::same_as<B, cpu>)
  auto operator()(const tensor<B>& x) const {
    return device_koleo(*this, x);
  }

  // x: (N, D), N >= 2
  koleo_result operator()(const tensor<cpu>& x) const {
    namespace ld = losses_detail;
    ld::expect_embeddings(x, "koleo x");
    const int64_t N = x.dim(0), D = x.dim(1);
    check<shape_error>(N >= 2, "koleo x: expected at least 2 rows (a nearest neighbour), got ", x.shape());
    const auto xn = ld::normalize_rows(x, N, eps_);
    tensor<cpu> dots(shape{N, N});
    ops::gemm(cpu{}, ops::trans::no, ops::trans::yes, N, N, D, 1.0f, xn.z.data(), D, xn.z.data(), D, 0.0f, dots.data(), N);
    std::vector<int64_t> nn(static_cast<size_t>(N));
    std::vector<double> row_loss(static_cast<size_t>(N));
    tensor<cpu> du(shape{N, D});  // dL/du_i
    parallel_for(0, N, [&](int64_t i) {
      const float* d = dots.data() + i * N;
      int64_t best = i == 0 ? 1 : 0;
      for (int64_t j = 0; j < N; ++j)
        if (j != i && d[j] > d[best]) best = j;
      nn[size_t(i)] = best;
      const float* a = xn.z.data() + i * D;
      const float* b = xn.z.data() + best * D;
      float* g = du.data() + i * D;
      double s = 0;
      for (int64_t k = 0; k < D; ++k) {
        g[k] = a[k] - b[k] + eps_;
        s += double(g[k]) * g[k];
      }
      const double r = std::sqrt(s);
      row_loss[size_t(i)] = -std::log(r + eps_);
      const float coef = float(-1.0 / (double(N) * std::max(r, 1e-30) * (r + eps_)));
      for (int64_t k = 0; k < D; ++k) g[k] *= coef;
    }, 16);
    // scatter into d zn (serial: the neighbour index may repeat)
    tensor<cpu> dz(shape{N, D});
    std::copy_n(du.data(), N * D, dz.data());
    for (int64_t i = 0; i < N; ++i) {
      float* t = dz.data() + nn[size_t(i)] * D;
      const float* g = du.data() + i * D;
      for (int64_t k = 0; k < D; ++k) t[k] -= g[k];
    }
    return {float(ld::ordered_sum(row_loss) / double(N)), ld::normalize_rows_backward(xn, dz)};
  }

 private:
  float eps_ = 1e-8f;
};

}  // namespace ssl

#if defined(__CUDACC__)
#include "../backend/cuda/koleo.cuh"
#endif
