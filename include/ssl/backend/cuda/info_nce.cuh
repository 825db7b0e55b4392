#pragma once
// InfoNCE and the MoCo losses on the device, the math of ssl::info_nce / ssl::moco /
// ssl::moco_v3 (losses/info_nce.hpp, losses/moco.hpp):
//   an, pn, nn: row-normalised anchors (N, D), positives (N, D), negatives (M, D) shared or (N, M, D);
//   logits l (N, 1 + M) = [an_i . pn_i, an_i . nn_m] / tau  (shared: one GEMM an nn^T; per anchor:
//   a strided-batched GEMM), L = 1/N sum_i [logsumexp(l_i) - l_i0];
//   G = (softmax(l) - e_0) / N,  d an = G[:, 1:] nn / tau + G_i0 pn_i / tau,  d pn_i = G_i0 an_i / tau,
//   d nn = G[:, 1:]^T an / tau (shared) or G_im an_i / tau (per anchor); then back through each
//   normalisation.
// moco_loss (v1/v2): q (N, D), k (N, D), queue (K, D): InfoNCE with shared negatives, grad_q only.
// moco_v3_loss: ctr(q, k) = 2 tau / N sum_i [logsumexp_j(qn_i . kn_j / tau) - qn_i . kn_i / tau],
//   L = ctr(q1, k2) + ctr(q2, k1); grad_q1, grad_q2 (keys are under stop-gradient).
// Every loss value stays on the device as a (1) tensor. device_moco / device_moco_v3 are what
// ssl::moco and ssl::moco_v3 call on device tensors (found by ADL), unit_keys the queue's
// normalisation of a device batch of keys.
#include "../../losses/moco.hpp"  // the CPU references
#include "gemm.cuh"
#include "kernels/info_nce.cuh"
#include "kernels/loss_reduce.cuh"
#include "unit_rows.cuh"

namespace ssl::ops {

struct info_nce_device_result {
  tensor<cuda> value;           // (1)
  tensor<cuda> grad_anchor;     // (N, D)
  tensor<cuda> grad_positive;   // (N, D); empty when not asked
  tensor<cuda> grad_negatives;  // shaped like the negatives; empty when not asked
};

/// anchor (N, D), positive (N, D), negatives (M, D) shared by all anchors or (N, M, D) per anchor.
inline info_nce_device_result info_nce_loss(const tensor<cuda>& anchor, const tensor<cuda>& positive,
                                            const tensor<cuda>& negatives, float temperature,
                                            bool want_grad_positive = true, bool want_grad_negatives = true,
                                            const char* who = "info_nce") {
  detail::expect_positive_device(temperature, who);
  detail::expect_device_embeddings(anchor, who);
  const int64_t N = anchor.dim(0), D = anchor.dim(1);
  const losses_detail::info_nce_negatives layout =
      losses_detail::info_nce_negatives_of(anchor.shape(), positive.shape(), negatives.shape(), who);
  const bool shared = layout.shared;
  const int64_t M = layout.count;
  const int64_t C = M + 1;
  const float inv_t = 1.0f / temperature;

  const detail::unit_rows an = detail::normalize_unit_rows(anchor, N);
  const detail::unit_rows pn = detail::normalize_unit_rows(positive, N);
  const detail::unit_rows nn = detail::normalize_unit_rows(negatives, shared ? M : N * M);

  // logits G (N, C), column 0 the positive; then turned into d loss / d logits in place
  tensor<cuda> G(shape{N, C});
  if (M > 0) {
    if (shared)
      gemm(cuda{}, trans::no, trans::yes, N, M, D, inv_t, an.z.data(), D, nn.z.data(), D, 0.0f, G.data() + 1, C);
    else  // row i: (1, D) x (D, M) against its own negatives
      gemm_strided_batched(cuda{}, trans::no, trans::yes, 1, M, D, inv_t, an.z.data(), D, D, nn.z.data(), D, M * D,
                           0.0f, G.data() + 1, C, C, N);
  }
  gpu::kernels::row_dot<<<unsigned(N), detail::row_threads(D), 0, gpu::stream()>>>(an.z.data(), pn.z.data(), D, inv_t,
                                                                                    G.data(), C);
  SSL_CUDA_CHECK_LAUNCH("row_dot");
  tensor<cuda> row_loss(shape{N});
  const float g_scale = 1.0f / float(N);
  gpu::kernels::softmax_xent_rows<<<unsigned(N), detail::row_threads(C), 0, gpu::stream()>>>(G.data(), C, 0, g_scale,
                                                                                              row_loss.data());
  SSL_CUDA_CHECK_LAUNCH("softmax_xent_rows");
  info_nce_device_result r;
  r.value = tensor<cuda>(shape{1});
  gpu::kernels::affine_sum<<<1, gpu::kernels::block_reduce_max, 0, gpu::stream()>>>(row_loss.data(), N, g_scale, 0.0f,
                                                                                    r.value.data());
  SSL_CUDA_CHECK_LAUNCH("affine_sum");

  // d an = G[:, 1:] nn / tau (+ the positive's part below)
  tensor<cuda> dan(shape{N, D}), dpn, dnn;
  if (want_grad_positive) dpn = tensor<cuda>(shape{N, D});
  if (M == 0)
    SSL_CUDA_CHECK(cudaMemsetAsync(dan.data(), 0, size_t(N * D) * sizeof(float), gpu::stream()));
  else if (shared)
    gemm(cuda{}, trans::no, trans::no, N, D, M, inv_t, G.data() + 1, C, nn.z.data(), D, 0.0f, dan.data(), D);
  else
    gemm_strided_batched(cuda{}, trans::no, trans::no, 1, D, M, inv_t, G.data() + 1, C, C, nn.z.data(), D, M * D, 0.0f,
                         dan.data(), D, D, N);
  gpu::kernels::info_nce_positive_grads<<<gpu::kernels::grid_for(N * D), gpu::kernels::block_size, 0, gpu::stream()>>>(
      G.data(), C, an.z.data(), pn.z.data(), N, D, inv_t, dan.data(), want_grad_positive ? dpn.data() : nullptr);
  SSL_CUDA_CHECK_LAUNCH("info_nce_positive_grads");
  r.grad_anchor = detail::unit_rows_backward(an, dan.data());
  if (want_grad_positive) r.grad_positive = detail::unit_rows_backward(pn, dpn.data());
  if (want_grad_negatives) {
    if (M == 0) {
      r.grad_negatives = tensor<cuda>(negatives.shape());
    } else {
      dnn = tensor<cuda>(negatives.shape());
      if (shared)  // d nn = G[:, 1:]^T an / tau: (M, D)
        gemm(cuda{}, trans::yes, trans::no, M, D, N, inv_t, G.data() + 1, C, an.z.data(), D, 0.0f, dnn.data(), D);
      else  // row i: (M, 1) x (1, D)
        gemm_strided_batched(cuda{}, trans::yes, trans::no, M, D, 1, inv_t, G.data() + 1, C, C, an.z.data(), D, D,
                             0.0f, dnn.data(), D, M * D, N);
      r.grad_negatives = detail::unit_rows_backward(nn, dnn.data());
    }
  }
  return r;
}

struct moco_device_result {
  tensor<cuda> value;   // (1)
  tensor<cuda> grad_q;  // (N, D)
};

/// MoCo v1/v2: q (N, D) queries, k (N, D) positive keys, queue (K, D) negative keys (stop-gradient).
inline moco_device_result moco_loss(const tensor<cuda>& q, const tensor<cuda>& k, const tensor<cuda>& queue,
                                    float temperature = 0.2f) {
  check<shape_error>(queue.rank() == 2, "moco: expected a (K, D) queue, got ", queue.shape());
  info_nce_device_result r = info_nce_loss(q, k, queue, temperature, false, false, "moco");
  return {std::move(r.value), std::move(r.grad_anchor)};
}

struct moco_v3_device_result {
  tensor<cuda> value;    // (1)
  tensor<cuda> grad_q1;  // (N, D)
  tensor<cuda> grad_q2;  // (N, D)
};

namespace detail {
// ctr(q, k): row losses into row_loss[0, N) (unscaled), returns d ctr / d q with the 2 tau / N scale.
inline tensor<cuda> moco_v3_contrast(const tensor<cuda>& q, const tensor<cuda>& k, float temperature,
                                     float* row_loss) {
  const int64_t N = q.dim(0), D = q.dim(1);
  const float inv_t = 1.0f / temperature;
  const unit_rows qn = normalize_unit_rows(q, N);
  const unit_rows kn = normalize_unit_rows(k, N);
  tensor<cuda> G(shape{N, N});
  gemm(cuda{}, trans::no, trans::yes, N, N, D, inv_t, qn.z.data(), D, kn.z.data(), D, 0.0f, G.data(), N);
  gpu::kernels::softmax_xent_rows<<<unsigned(N), row_threads(N), 0, gpu::stream()>>>(
      G.data(), N, 1, 2.0f * temperature / float(N), row_loss);
  SSL_CUDA_CHECK_LAUNCH("softmax_xent_rows");
  tensor<cuda> dqn(shape{N, D});
  gemm(cuda{}, trans::no, trans::no, N, D, N, inv_t, G.data(), N, kn.z.data(), D, 0.0f, dqn.data(), D);
  return unit_rows_backward(qn, dqn.data());
}
}  // namespace detail

/// MoCo v3: q1, q2 (N, D) queries of the two views, k1, k2 (N, D) their momentum keys.
inline moco_v3_device_result moco_v3_loss(const tensor<cuda>& q1, const tensor<cuda>& q2, const tensor<cuda>& k1,
                                          const tensor<cuda>& k2, float temperature = 1.0f) {
  detail::expect_positive_device(temperature, "moco_v3 temperature");
  detail::expect_device_embeddings(q1, "moco_v3 (q1, k2)");
  check<shape_error>(k2.shape() == q1.shape(), "moco_v3 (q1, k2): expected keys of shape ", q1.shape(), ", got ",
                     k2.shape());
  detail::expect_device_embeddings(q2, "moco_v3 (q2, k1)");
  check<shape_error>(k1.shape() == q2.shape(), "moco_v3 (q2, k1): expected keys of shape ", q2.shape(), ", got ",
                     k1.shape());
  check<shape_error>(q2.dim(0) == q1.dim(0), "moco_v3: expected both views with the same batch size, got ",
                     q1.shape(), " and ", q2.shape());
  const int64_t N = q1.dim(0);
  tensor<cuda> row_loss(shape{2 * N});
  moco_v3_device_result r;
  r.grad_q1 = detail::moco_v3_contrast(q1, k2, temperature, row_loss.data());
  r.grad_q2 = detail::moco_v3_contrast(q2, k1, temperature, row_loss.data() + N);
  r.value = tensor<cuda>(shape{1});
  gpu::kernels::affine_sum<<<1, gpu::kernels::block_reduce_max, 0, gpu::stream()>>>(
      row_loss.data(), 2 * N, 2.0f * temperature / float(N), 0.0f, r.value.data());
  SSL_CUDA_CHECK_LAUNCH("affine_sum");
  return r;
}

}  // namespace ssl::ops

namespace ssl {

/// ssl::moco on device tensors (found by moco::operator() for tensor<cuda>).
inline ops::moco_device_result device_moco(const moco& loss, const tensor<cuda>& q, const tensor<cuda>& k,
                                           const tensor<cuda>& queue) {
  return ops::moco_loss(q, k, queue, loss.temperature());
}

/// ssl::moco_v3 on device tensors (found by moco_v3::operator() for tensor<cuda>).
inline ops::moco_v3_device_result device_moco_v3(const moco_v3& loss, const tensor<cuda>& q1, const tensor<cuda>& q2,
                                                 const tensor<cuda>& k1, const tensor<cuda>& k2) {
  return ops::moco_v3_loss(q1, q2, k1, k2, loss.temperature());
}

/// keys (B, D) with unit rows, on the device (the CPU overload: losses/moco.hpp).
inline tensor<cuda> unit_keys(const tensor<cuda>& keys) {
  return ops::detail::normalize_unit_rows(keys, keys.dim(0)).z;
}

}  // namespace ssl
