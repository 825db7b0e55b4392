#pragma once
// SimSiam's negative cosine similarity (Chen & He 2021, "Exploring Simple Siamese
// Representation Learning"):  D(p, z) = -1/N sum_i cos(p_i, z_i), z under stop-gradient.
// Gradient: d pn_i = -zn_i / N, then back through the normalisation of p.
// The symmetric loss 0.5 D(p1, z2) + 0.5 D(p2, z1) is formed by the method.
#include "byol.hpp"

namespace ssl {

class simsiam {
 public:
  simsiam() = default;
  // p: (N, D) predictions, z: (N, D) targets
  cosine_regression_result operator()(const tensor<cpu>& p, const tensor<cpu>& z) const {
    return losses_detail::cosine_regression(p, z, 0.0f, -1.0f, "simsiam");
  }
  // p, z on a device backend (backend/cuda/byol.cuh, under nvcc); `value` stays a (1) device tensor.
  template <class B>
    requires(!std::same_as<B, cpu>)
  auto operator()(const tensor<B>& p, const tensor<B>& z) const {
    return device_simsiam(*this, p, z);
  }
};

}  // namespace ssl

#if defined(__CUDACC__)
#include "../backend/cuda/byol.cuh"
#endif
