#pragma once
// BYOL's normalised regression (Grill et al. 2020, "Bootstrap Your Own Latent"):
//   p: (N, D) online predictions, z: (N, D) target projections (stop-gradient),
//   L = 1/N sum_i |pn_i - zn_i|^2 = 1/N sum_i (2 - 2 cos(p_i, z_i)).
// Gradient: d pn_i = -2 zn_i / N, then back through the normalisation of p.
// The symmetric BYOL loss is byol(p1, z2) + byol(p2, z1), summed by the method.
#include <concepts>

#include "detail/row_math.hpp"

namespace ssl {

struct cosine_regression_result {
  float value = 0;
  tensor<cpu> grad_p;  // (N, D); the target is under stop-gradient
};

namespace losses_detail {
/// value = offset + coef / N sum_i cos(p_i, z_i); gradient w.r.t. p only.
inline cosine_regression_result cosine_regression(const tensor<cpu>& p, const tensor<cpu>& z, float offset, float coef,
                                                  const char* who) {
  expect_embeddings(p, who);
  check<shape_error>(z.shape() == p.shape(), who, ": expected targets of shape ", p.shape(), " (as the predictions), got ",
                     z.shape());
  const int64_t N = p.dim(0), D = p.dim(1);
  const auto pn = normalize_rows(p, N);
  const auto zn = normalize_rows(z, N);
  std::vector<double> cos(static_cast<size_t>(N));
  tensor<cpu> dpn(shape{N, D});
  const float g = coef / float(N);
  parallel_for(0, N, [&](int64_t i) {
    const float* a = pn.z.data() + i * D;
    const float* b = zn.z.data() + i * D;
    float* d = dpn.data() + i * D;
    double s = 0;
    for (int64_t k = 0; k < D; ++k) {
      s += double(a[k]) * b[k];
      d[k] = g * b[k];
    }
    cos[size_t(i)] = s;
  }, 64);
  return {float(offset + coef * ordered_sum(cos) / double(N)), normalize_rows_backward(pn, dpn)};
}
}  // namespace losses_detail

class byol {
 public:
  byol() = default;
  // p: (N, D) online predictions, z: (N, D) targets
  cosine_regression_result operator()(const tensor<cpu>& p, const tensor<cpu>& z) const {
    return losses_detail::cosine_regression(p, z, 2.0f, -2.0f, "byol");
  }
  // p, z on a device backend: the same loss there (backend/cuda/byol.cuh, under nvcc); the
  // result's `value` is a (1) device tensor, so the step never waits for it.
  template <class B>
    requires(!std::same_as<B, cpu>)
  auto operator()(const tensor<B>& p, const tensor<B>& z) const {
    return device_byol(*this, p, z);
  }
};

}  // namespace ssl

#if defined(__CUDACC__)
#include "../backend/cuda/byol.cuh"
#endif
