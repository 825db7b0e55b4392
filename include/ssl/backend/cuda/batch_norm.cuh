#pragma once
// Batch normalisation on the device (contract of backend/cpu/batch_norm.hpp, with the per-channel
// statistics mean / var / invstd held in device tensors (C) instead of host vectors).
#include "../cpu/batch_norm.hpp"  // batch_norm_layout_of and the CPU reference
#include "buffer.cuh"
#include "kernels/batch_norm.cuh"

namespace ssl::ops {

inline void batch_norm_forward_train(const tensor<cuda>& x, const tensor<cuda>& gamma, const tensor<cuda>& beta,
                                     float eps, bool fuse_relu, tensor<cuda>& y, tensor<cuda>& mean,
                                     tensor<cuda>& var, tensor<cuda>& invstd) {
  const int64_t C = gamma.numel();
  const batch_norm_layout l = batch_norm_layout_of(x.shape(), C);
  expect_shape(beta, gamma.shape(), "batch_norm beta");
  check<value_error>(l.count() > 1, "batch_norm: expected more than 1 value per channel in training, got input shape ",
                     x.shape());
  if (!(y.shape() == x.shape())) y = tensor<cuda>(x.shape());
  for (tensor<cuda>* t : {&mean, &var, &invstd})
    if (!(t->shape() == shape{C})) *t = tensor<cuda>(shape{C});
  gpu::kernels::batch_norm_forward_train<<<unsigned(C), gpu::kernels::block_reduce_max, 0, gpu::stream()>>>(
      x.data(), gamma.data(), beta.data(), l.batch, C, l.inner, eps, fuse_relu, y.data(), mean.data(), var.data(),
      invstd.data());
  SSL_CUDA_CHECK_LAUNCH("batch_norm_forward_train");
}

inline void batch_norm_forward_eval(const tensor<cuda>& x, const tensor<cuda>& gamma, const tensor<cuda>& beta,
                                    const tensor<cuda>& running_mean, const tensor<cuda>& running_var, float eps,
                                    bool fuse_relu, tensor<cuda>& y) {
  const int64_t C = gamma.numel();
  const batch_norm_layout l = batch_norm_layout_of(x.shape(), C);
  expect_shape(running_mean, gamma.shape(), "batch_norm running_mean");
  expect_shape(running_var, gamma.shape(), "batch_norm running_var");
  if (!(y.shape() == x.shape())) y = tensor<cuda>(x.shape());
  if (x.numel() == 0) return;
  gpu::kernels::batch_norm_forward_eval<<<gpu::kernels::grid_for(x.numel()), gpu::kernels::block_size, 0,
                                          gpu::stream()>>>(x.data(), gamma.data(), beta.data(), running_mean.data(),
                                                           running_var.data(), C, l.inner, x.numel(), eps, fuse_relu,
                                                           y.data());
  SSL_CUDA_CHECK_LAUNCH("batch_norm_forward_eval");
}

inline void batch_norm_backward_train(const tensor<cuda>& dy, const tensor<cuda>& x, const tensor<cuda>& mean,
                                      const tensor<cuda>& invstd, const tensor<cuda>& gamma, const tensor<cuda>& beta,
                                      bool fuse_relu, tensor<cuda>& dx, tensor<cuda>& dgamma, tensor<cuda>& dbeta) {
  const int64_t C = gamma.numel();
  const batch_norm_layout l = batch_norm_layout_of(x.shape(), C);
  expect_shape(dy, x.shape(), "batch_norm backward dy");
  check<shape_error>(mean.numel() == C && invstd.numel() == C, "batch_norm backward: expected ", C,
                     " saved mean and invstd values, got ", mean.numel(), " and ", invstd.numel());
  expect_shape(dgamma, gamma.shape(), "batch_norm backward dgamma");
  expect_shape(dbeta, gamma.shape(), "batch_norm backward dbeta");
  if (!(dx.shape() == x.shape())) dx = tensor<cuda>(x.shape());
  gpu::kernels::batch_norm_backward_train<<<unsigned(C), gpu::kernels::block_reduce_max, 0, gpu::stream()>>>(
      dy.data(), x.data(), mean.data(), invstd.data(), gamma.data(), beta.data(), l.batch, C, l.inner, fuse_relu,
      dx.data(), dgamma.data(), dbeta.data());
  SSL_CUDA_CHECK_LAUNCH("batch_norm_backward_train");
}

/// running = (1 - momentum) running + momentum batch (variance unbiased by count / (count - 1)).
inline void batch_norm_update_running(tensor<cuda>& running_mean, tensor<cuda>& running_var, const tensor<cuda>& mean,
                                      const tensor<cuda>& var, int64_t count, float momentum) {
  expect_shape(mean, running_mean.shape(), "batch_norm_update_running mean");
  expect_shape(var, running_mean.shape(), "batch_norm_update_running var");
  expect_shape(running_var, running_mean.shape(), "batch_norm_update_running running_var");
  check<value_error>(count > 1, "batch_norm_update_running: expected count > 1, got ", count);
  const float unbias = float(double(count) / double(count - 1));
  gpu::kernels::batch_norm_update_running<<<gpu::kernels::grid_for(running_mean.numel()), gpu::kernels::block_size, 0,
                                            gpu::stream()>>>(running_mean.data(), running_var.data(), mean.data(),
                                                             var.data(), running_mean.numel(), momentum, unbias);
  SSL_CUDA_CHECK_LAUNCH("batch_norm_update_running");
}

}  // namespace ssl::ops
