#pragma once
// iBOT's masked-patch loss on the device, the math of ssl::ibot_patch (losses/ibot_patch.hpp):
//   student (M, K) logits of the hidden patches, targets (M, K) teacher probabilities, both on the
//   device; row weights w_p = 1 / (N M_n) from the host counts (losses_detail::ibot_row_weights),
//   uploaded;  L = sum_p w_p sum_k -t_pk log softmax(s_p / tau_s)_k,
//   d s_p = w_p (softmax(s_p / tau_s) sum_k t_pk - t_p) / tau_s.
// One block a row, then one fixed-order sum (deterministic). The loss stays on the device (one
// element); M = 0 gives 0 and a (0, K) gradient.
#include <vector>

#include "../../losses/ibot_patch.hpp"  // the CPU reference
#include "buffer.cuh"
#include "kernels/cross_entropy.cuh"  // scaled_sum
#include "kernels/ibot_patch.cuh"
#include "layer_norm.cuh"  // detail::row_threads
#include "teacher_targets.cuh"  // centered_softmax

namespace ssl {

struct ibot_patch_device_result {
  tensor<cuda> value;         // (1)
  tensor<cuda> grad_student;  // (M, K)
};

/// ibot_patch::with_targets on device logits and teacher probabilities.
inline ibot_patch_device_result device_ibot_patch(const ibot_patch& loss, const tensor<cuda>& student,
                                                  const tensor<cuda>& targets,
                                                  const std::vector<int64_t>& hidden_per_image) {
  const int64_t K = loss.out_dim();
  check<shape_error>(K > 0, "ibot_patch: default-constructed loss (no out_dim)");
  const std::vector<float> w = losses_detail::ibot_row_weights(student.shape(), targets.shape(), K, hidden_per_image);
  const int64_t M = student.dim(0);
  ibot_patch_device_result r{tensor<cuda>(shape{1}), tensor<cuda>(student.shape())};
  if (M == 0) {
    r.value.zero();
    return r;
  }
  gpu::context& ctx = gpu::context::get();
  float* weights = ctx.workspace(0, M);
  float* row_loss = ctx.workspace(1, M);
  SSL_CUDA_CHECK(cudaMemcpyAsync(weights, w.data(), size_t(M) * sizeof(float), cudaMemcpyHostToDevice, gpu::stream()));
  gpu::kernels::ibot_patch_rows<<<unsigned(M), ops::detail::row_threads(K), 0, gpu::stream()>>>(
      student.data(), targets.data(), weights, K, 1.0f / loss.student_temperature(), r.grad_student.data(), row_loss);
  SSL_CUDA_CHECK_LAUNCH("ibot_patch_rows");
  gpu::kernels::scaled_sum<<<1, gpu::kernels::block_reduce_max, 0, gpu::stream()>>>(row_loss, M, 1.0f, r.value.data());
  SSL_CUDA_CHECK_LAUNCH("scaled_sum");
  return r;
}

/// ibot_patch::operator() on device logits: the teacher logits (M, K) centred with the loss's own
/// (host) center, uploaded, and sharpened; a device method keeping its center on the device calls
/// losses_detail::centered_softmax and with_targets itself.
inline ibot_patch_device_result device_ibot_patch_logits(const ibot_patch& loss, const tensor<cuda>& student,
                                                         const tensor<cuda>& teacher,
                                                         const std::vector<int64_t>& hidden_per_image) {
  check<shape_error>(loss.out_dim() > 0, "ibot_patch: default-constructed loss (no out_dim)");
  expect_shape(teacher, student.shape(), "ibot_patch teacher");
  const tensor<cuda> targets = losses_detail::centered_softmax(teacher, to_device(loss.center()),
                                                              loss.teacher_temperature());
  return device_ibot_patch(loss, student, targets, hidden_per_image);
}

}  // namespace ssl
