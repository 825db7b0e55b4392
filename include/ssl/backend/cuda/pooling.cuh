#pragma once
// Pooling on the device (contract of backend/cpu/pooling.hpp). Max pooling keeps its argmax
// (flat index within the input plane) in a device int32 array instead of a host vector.
#include "../cpu/pooling.hpp"  // pool2d_geometry_of and the CPU reference
#include "buffer.cuh"
#include "kernels/pooling.cuh"

namespace ssl::ops {

template <>
struct max_pool_argmax<cuda> {
  using type = gpu::array<int32_t>;
};

namespace detail {
inline gpu::kernels::pool_dims pool_dims_of(const pool2d_geometry& g) {
  return {g.planes(), g.height, g.width, g.kernel, g.stride, g.padding, g.out_h, g.out_w};
}
}  // namespace detail

inline void max_pool2d_forward(const tensor<cuda>& x, int64_t kernel, int64_t stride, int64_t padding,
                               tensor<cuda>& y, gpu::array<int32_t>* argmax) {
  const pool2d_geometry g = pool2d_geometry_of(x.shape(), kernel, stride, padding, "max_pool2d");
  const shape ys{g.batch, g.channels, g.out_h, g.out_w};
  if (!(y.shape() == ys)) y = tensor<cuda>(ys);
  if (argmax && argmax->size() != ys.numel()) *argmax = gpu::array<int32_t>(ys.numel());
  if (ys.numel() == 0) return;
  gpu::kernels::max_pool_forward<<<gpu::kernels::grid_for(ys.numel()), gpu::kernels::block_size, 0, gpu::stream()>>>(
      x.data(), detail::pool_dims_of(g), y.data(), argmax ? argmax->data() : nullptr);
  SSL_CUDA_CHECK_LAUNCH("max_pool_forward");
}

inline void max_pool2d_backward(const shape& x_shape, int64_t kernel, int64_t stride, int64_t padding,
                                const gpu::array<int32_t>& argmax, const tensor<cuda>& dy, tensor<cuda>& dx) {
  const pool2d_geometry g = pool2d_geometry_of(x_shape, kernel, stride, padding, "max_pool2d backward");
  expect_shape(dy, shape{g.batch, g.channels, g.out_h, g.out_w}, "max_pool2d backward dy");
  check<shape_error>(argmax.size() == dy.numel(), "max_pool2d backward: expected ", dy.numel(),
                     " saved positions, got ", argmax.size());
  if (!(dx.shape() == x_shape)) dx = tensor<cuda>(x_shape);
  if (dx.numel() == 0) return;
  gpu::kernels::max_pool_backward<<<gpu::kernels::grid_for(dx.numel()), gpu::kernels::block_size, 0, gpu::stream()>>>(
      argmax.data(), dy.data(), detail::pool_dims_of(g), dx.data());
  SSL_CUDA_CHECK_LAUNCH("max_pool_backward");
}

inline void avg_pool2d_forward(const tensor<cuda>& x, int64_t kernel, int64_t stride, int64_t padding,
                               tensor<cuda>& y) {
  const pool2d_geometry g = pool2d_geometry_of(x.shape(), kernel, stride, padding, "avg_pool2d");
  const shape ys{g.batch, g.channels, g.out_h, g.out_w};
  if (!(y.shape() == ys)) y = tensor<cuda>(ys);
  if (ys.numel() == 0) return;
  gpu::kernels::avg_pool_forward<<<gpu::kernels::grid_for(ys.numel()), gpu::kernels::block_size, 0, gpu::stream()>>>(
      x.data(), detail::pool_dims_of(g), y.data());
  SSL_CUDA_CHECK_LAUNCH("avg_pool_forward");
}

inline void avg_pool2d_backward(const shape& x_shape, int64_t kernel, int64_t stride, int64_t padding,
                                const tensor<cuda>& dy, tensor<cuda>& dx) {
  const pool2d_geometry g = pool2d_geometry_of(x_shape, kernel, stride, padding, "avg_pool2d backward");
  expect_shape(dy, shape{g.batch, g.channels, g.out_h, g.out_w}, "avg_pool2d backward dy");
  if (!(dx.shape() == x_shape)) dx = tensor<cuda>(x_shape);
  if (dx.numel() == 0) return;
  gpu::kernels::avg_pool_backward<<<gpu::kernels::grid_for(dx.numel()), gpu::kernels::block_size, 0, gpu::stream()>>>(
      dy.data(), detail::pool_dims_of(g), dx.data());
  SSL_CUDA_CHECK_LAUNCH("avg_pool_backward");
}

inline void global_avg_pool_forward(const tensor<cuda>& x, tensor<cuda>& y) {
  check<shape_error>(x.rank() == 4, "global_avg_pool: expected input (N, C, H, W), got shape ", x.shape());
  const int64_t N = x.dim(0), C = x.dim(1), HW = x.dim(2) * x.dim(3);
  check<shape_error>(HW > 0, "global_avg_pool: expected a non-empty spatial size, got shape ", x.shape());
  const shape ys{N, C};
  if (!(y.shape() == ys)) y = tensor<cuda>(ys);
  const int64_t planes = N * C;
  if (planes == 0) return;
  gpu::kernels::global_avg_pool_forward<<<unsigned((planes * 32 + 255) / 256), 256, 0, gpu::stream()>>>(
      x.data(), planes, HW, y.data());
  SSL_CUDA_CHECK_LAUNCH("global_avg_pool_forward");
}

inline void global_avg_pool_backward(const shape& x_shape, const tensor<cuda>& dy, tensor<cuda>& dx) {
  check<shape_error>(x_shape.rank() == 4, "global_avg_pool backward: expected input (N, C, H, W), got shape ", x_shape);
  expect_shape(dy, shape{x_shape[0], x_shape[1]}, "global_avg_pool backward dy");
  if (!(dx.shape() == x_shape)) dx = tensor<cuda>(x_shape);
  const int64_t planes = x_shape[0] * x_shape[1], HW = x_shape[2] * x_shape[3];
  if (dx.numel() == 0) return;
  gpu::kernels::global_avg_pool_backward<<<gpu::kernels::grid_for(dx.numel()), gpu::kernels::block_size, 0,
                                           gpu::stream()>>>(dy.data(), planes, HW, dx.data());
  SSL_CUDA_CHECK_LAUNCH("global_avg_pool_backward");
}

}  // namespace ssl::ops
