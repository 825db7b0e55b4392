#pragma once
// MAE's masked reconstruction loss on the device, the math and checks of ssl::masked_reconstruction
// (losses/masked_reconstruction.hpp):
//   pred, target (N, L, P) on the device; mask (N, L) of 0/1 on the host (1 = masked; checked and
//   summed there, then uploaded); optional norm_pix target t' = (t - mean(t)) / sqrt(var_unbiased(t) + eps).
//   L = sum_nl mask_nl mean_p (pred - t')^2 / sum mask,  d pred = 2 mask (pred - t') / (P sum mask);
//   absolute (SimMIM's L1): L = sum_nl mask_nl mean_p |pred - t'| / sum mask, d pred = mask sign(pred - t') / (P sum mask).
// The loss stays on the device (one element): one warp per patch row, then one fixed-order block sum.
#include "../../losses/masked_reconstruction.hpp"  // the CPU reference
#include "buffer.cuh"
#include "kernels/cross_entropy.cuh"  // scaled_sum
#include "kernels/masked_reconstruction.cuh"

namespace ssl::ops {

struct masked_reconstruction_device_result {
  tensor<cuda> value;      // (1)
  tensor<cuda> grad_pred;  // (N, L, P)
};

inline masked_reconstruction_device_result masked_reconstruction_loss(const tensor<cuda>& pred,
                                                                      const tensor<cuda>& target,
                                                                      const tensor<cpu>& mask, bool norm_pix = true,
                                                                      float var_eps = 1e-6f,
                                                                      reconstruction_error error = reconstruction_error::squared,
                                                                      double normaliser = 0) {
  const bool absolute = error == reconstruction_error::absolute;
  check<value_error>(var_eps >= 0.0f, "masked_reconstruction var_eps: expected >= 0, got ", var_eps);
  const double mask_sum = losses_detail::masked_reconstruction_normaliser(
      losses_detail::check_masked_reconstruction_inputs(pred.shape(), target.shape(), mask, norm_pix), normaliser);
  const int64_t R = pred.dim(0) * pred.dim(1), P = pred.dim(2);
  const tensor<cuda> dmask = to_device(mask);
  masked_reconstruction_device_result res{tensor<cuda>(shape{1}), tensor<cuda>(pred.shape())};
  float* row_err = gpu::context::get().workspace(0, R);
  const int threads = gpu::kernels::block_size, rows_per_block = threads / 32;
  const unsigned grid = unsigned(std::min<int64_t>((R + rows_per_block - 1) / rows_per_block, 65535 * 8));
  gpu::kernels::masked_reconstruction_rows<<<grid, threads, 0, gpu::stream()>>>(
      pred.data(), target.data(), dmask.data(), R, P, norm_pix, absolute, var_eps,
      float((absolute ? 1.0 : 2.0) / (double(P) * mask_sum)),
      res.grad_pred.data(), row_err);
  SSL_CUDA_CHECK_LAUNCH("masked_reconstruction_rows");
  gpu::kernels::scaled_sum<<<1, gpu::kernels::block_reduce_max, 0, gpu::stream()>>>(row_err, R, float(1.0 / mask_sum),
                                                                                    res.value.data());
  SSL_CUDA_CHECK_LAUNCH("scaled_sum");
  return res;
}

}  // namespace ssl::ops

namespace ssl {

/// ssl::masked_reconstruction on device predictions and targets (found by its operator() for
/// tensor<cuda>); the mask stays on the host.
inline ops::masked_reconstruction_device_result device_masked_reconstruction(const masked_reconstruction& loss,
                                                                            const tensor<cuda>& pred,
                                                                            const tensor<cuda>& target,
                                                                            const tensor<cpu>& mask,
                                                                            double normaliser = 0) {
  return ops::masked_reconstruction_loss(pred, target, mask, loss.norm_pix(), loss.var_eps(), loss.error(),
                                         normaliser);
}

}  // namespace ssl
