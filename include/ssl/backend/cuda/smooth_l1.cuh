#pragma once
// Smooth L1 loss on the device, the math and checks of ssl::smooth_l1 (losses/smooth_l1.hpp):
//   pred, target: the same shape (any rank, n > 0 elements) on the device, d = pred - target,
//   L = 1/n sum f(d),  f(d) = 0.5 d^2 / beta if |d| < beta else |d| - 0.5 beta,
//   d pred = clamp(d / beta, -1, 1) / n.  The target is data (no gradient).
// The loss stays on the device (one element): one grid-stride pass writes the gradient and one
// partial sum per block, then one fixed-order block sum (the grid depends on n only: deterministic).
#include <algorithm>

#include "../../losses/smooth_l1.hpp"  // the CPU reference
#include "buffer.cuh"
#include "kernels/loss_reduce.cuh"
#include "kernels/smooth_l1.cuh"

namespace ssl::ops {

struct smooth_l1_device_result {
  tensor<cuda> value;      // (1)
  tensor<cuda> grad_pred;  // the shape of pred
};

/// Blocks of the element pass at most (each thread then covers n / (256 * 1024) elements).
inline constexpr int64_t smooth_l1_max_blocks = 1024;

inline smooth_l1_device_result smooth_l1_loss(const tensor<cuda>& pred, const tensor<cuda>& target,
                                              float beta = 1.0f) {
  losses_detail::expect_positive(beta, "smooth_l1 beta");
  losses_detail::check_smooth_l1_inputs(pred.shape(), target.shape());
  const int64_t n = pred.numel();
  const int threads = gpu::kernels::block_size;
  const int64_t blocks = std::min<int64_t>((n + threads - 1) / threads, smooth_l1_max_blocks);
  smooth_l1_device_result res{tensor<cuda>(shape{1}), tensor<cuda>(pred.shape())};
  float* partial = gpu::context::get().workspace(0, blocks);
  gpu::kernels::smooth_l1_partials<<<unsigned(blocks), threads, 0, gpu::stream()>>>(
      pred.data(), target.data(), n, beta, float(1.0 / double(n)), res.grad_pred.data(), partial);
  SSL_CUDA_CHECK_LAUNCH("smooth_l1_partials");
  gpu::kernels::affine_sum<<<1, gpu::kernels::block_reduce_max, 0, gpu::stream()>>>(
      partial, blocks, float(1.0 / double(n)), 0.0f, res.value.data());
  SSL_CUDA_CHECK_LAUNCH("affine_sum");
  return res;
}

}  // namespace ssl::ops

namespace ssl {

/// ssl::smooth_l1 on device tensors (found by its operator() for tensor<cuda>).
inline ops::smooth_l1_device_result device_smooth_l1(const smooth_l1& loss, const tensor<cuda>& pred,
                                                      const tensor<cuda>& target) {
  return ops::smooth_l1_loss(pred, target, loss.beta());
}

}  // namespace ssl
