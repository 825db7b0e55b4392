#pragma once
// Helpers of the device-loss parity tests (info_nce, byol, vicreg_barlow, koleo_triplet,
// lars_clip): the loss value read back and compared with the CPU value.
#include <algorithm>
#include <cmath>

#include "cuda_test.cuh"

namespace ssl_cuda_test {

/// |device value - cpu value| / max(1, |cpu value|); the device value is a (1) tensor.
inline double value_rel_diff(const ssl::tensor<ssl::cuda>& value, float ref) {
  ssl::expect_shape(value, ssl::shape{1}, "value_rel_diff");
  const float got = ssl::to_host_scalar(value);
  if (!std::isfinite(got)) return INFINITY;
  return std::abs(double(got) - double(ref)) / std::max(1.0, std::abs(double(ref)));
}

/// An empty (zero-element) device tensor: constructing it allocates nothing, so the checks that
/// run before any device work can be tested on a machine without a GPU.
inline ssl::tensor<ssl::cuda> empty_device(const ssl::shape& s) { return ssl::tensor<ssl::cuda>(s); }

}  // namespace ssl_cuda_test
