#pragma once
// MSN's loss on the device, the math and checks of ssl::msn_loss (losses/msn.hpp): the cosine
// scores and both normalisations run through the device linear / l2_normalize_rows ops (in the
// loss header); here the two row-wise parts:
//   device_msn_targets:      (N, K) cosine scores -> softmax(s / (tau T)) per row, or its log through
//                            the device Sinkhorn-Knopp (temperature 1) when the loss balances targets
//   device_msn_with_targets: anchor scores (R, K), targets (N, K) -> value (1), d value / d scores
//                            (R, K), parts (3): log-softmax rows, column sums of p, one block per
//                            anchor row for the gradient and its terms, one block for the value.
// Nothing leaves the device; every reduction has a fixed order (deterministic).
#include "../../losses/msn.hpp"  // the CPU reference
#include "buffer.cuh"
#include "kernels/msn.cuh"
#include "layer_norm.cuh"  // detail::row_threads
#include "linear.cuh"      // column_sums
#include "sinkhorn_knopp.cuh"
#include "weight_norm.cuh"

namespace ssl {

/// The targets (N, K) of cosine scores st (N, K), `scale` = 1 / (tau T).
inline tensor<cuda> device_msn_targets(const msn_loss& loss, const tensor<cuda>& st, float scale) {
  const int64_t N = st.dim(0), K = st.dim(1);
  const bool sinkhorn = loss.options().sinkhorn;
  tensor<cuda> out(st.shape());  // log q (Sinkhorn's input) or q
  gpu::kernels::msn_log_softmax_rows<<<unsigned(N), ops::detail::row_threads(K), 0, gpu::stream()>>>(
      st.data(), K, scale, sinkhorn ? out.data() : nullptr, sinkhorn ? nullptr : out.data());
  SSL_CUDA_CHECK_LAUNCH("msn_log_softmax_rows");
  return sinkhorn ? sinkhorn_knopp(out, 1.0f, loss.options().sinkhorn_iterations, /*check_finite=*/false) : out;
}

struct msn_device_scores_result {
  tensor<cuda> value;        // (1)
  tensor<cuda> grad_scores;  // (R, K)
  tensor<cuda> parts;        // (3)
};

/// The loss on anchor cosine scores (V N, K) against targets q (N, K).
inline msn_device_scores_result device_msn_with_targets(const msn_loss& loss, const tensor<cuda>& scores,
                                                        const tensor<cuda>& q) {
  losses_detail::check_msn_scores(scores.shape(), q.shape());
  const msn_loss_options& o = loss.options();
  const int64_t R = scores.dim(0), K = scores.dim(1), N = q.dim(0);
  const int threads = ops::detail::row_threads(K);
  tensor<cuda> logp(scores.shape()), p(scores.shape()), cs(shape{K}), ce(shape{R}), plogp(shape{R});
  gpu::kernels::msn_log_softmax_rows<<<unsigned(R), threads, 0, gpu::stream()>>>(scores.data(), K,
                                                                                 1.0f / o.temperature, logp.data(),
                                                                                 p.data());
  SSL_CUDA_CHECK_LAUNCH("msn_log_softmax_rows");
  ops::column_sums(p.data(), cs.data(), R, K, false);
  msn_device_scores_result res{tensor<cuda>(shape{1}), tensor<cuda>(scores.shape()), tensor<cuda>(shape{3})};
  const float inv_r = float(1.0 / double(R));
  gpu::kernels::msn_anchor_rows<<<unsigned(R), threads, 0, gpu::stream()>>>(
      p.data(), logp.data(), q.data(), cs.data(), N, K, inv_r, float(1.0 / (double(R) * double(o.temperature))),
      o.me_max_weight, o.entropy_weight, res.grad_scores.data(), ce.data(), plogp.data());
  SSL_CUDA_CHECK_LAUNCH("msn_anchor_rows");
  gpu::kernels::msn_value<<<1, gpu::kernels::block_reduce_max, 0, gpu::stream()>>>(
      ce.data(), plogp.data(), R, cs.data(), K, inv_r, o.me_max_weight, o.entropy_weight, res.value.data(),
      res.parts.data());
  SSL_CUDA_CHECK_LAUNCH("msn_value");
  return res;
}

}  // namespace ssl
