#pragma once
// ssl::sinkhorn_knopp on device teacher logits: the math of losses/sinkhorn_knopp.hpp (same
// per-prototype max shift, same "!= 0" zero rules) in float32. Kernels: a column pass for the
// maxima (and the non-finite count), then per iteration column_sums and one block a row that
// applies the prototype and the sample normalisation (the last with mass 1, so rows sum to 1).
// With check_finite the non-finite count is read back once (a host synchronisation) and the first
// bad element named as on the CPU; dino_method passes false (its loss check catches NaN targets).
#include <cmath>

#include "../../losses/sinkhorn_knopp.hpp"
#include "buffer.cuh"
#include "kernels/cross_entropy.cuh"  // scaled_sum
#include "kernels/sinkhorn_knopp.cuh"
#include "layer_norm.cuh"  // detail::row_threads
#include "linear.cuh"      // column_sums

namespace ssl {

inline tensor<cuda> sinkhorn_knopp(const tensor<cuda>& t, float temperature, int iterations = 3,
                                   bool check_finite = true) {
  const int64_t K = losses_detail::check_sinkhorn_inputs(t.shape(), temperature, iterations), R = t.numel() / K;
  gpu::context& ctx = gpu::context::get();
  float* col = ctx.workspace(0, K);  // column maxima, then column sums
  float* bad = ctx.workspace(1, K);  // non-finite entries per column
  const unsigned col_blocks = unsigned((K + 255) / 256);
  gpu::kernels::sinkhorn_column_max<<<col_blocks, 256, 0, gpu::stream()>>>(t.data(), R, K, col, bad);
  SSL_CUDA_CHECK_LAUNCH("sinkhorn_column_max");
  if (check_finite) {
    tensor<cuda> bad_total(shape{1});
    gpu::kernels::scaled_sum<<<1, gpu::kernels::block_reduce_max, 0, gpu::stream()>>>(bad, K, 1.0f, bad_total.data());
    SSL_CUDA_CHECK_LAUNCH("scaled_sum");
    if (to_host_scalar(bad_total) > 0.0f) {  // error path: find the first one on the host
      const tensor<cpu> h = to_host(t);
      for (int64_t i = 0; i < h.numel(); ++i)
        check<numeric_error>(std::isfinite(h[i]), "sinkhorn_knopp: expected finite teacher logits, found ", h[i],
                             " at element ", i);
    }
  }
  tensor<cuda> q(t.shape());
  gpu::kernels::sinkhorn_exp<<<gpu::kernels::grid_for(R * K), gpu::kernels::block_size, 0, gpu::stream()>>>(
      t.data(), col, R * K, K, 1.0f / temperature, q.data());
  SSL_CUDA_CHECK_LAUNCH("sinkhorn_exp");
  const int threads = ops::detail::row_threads(K);
  for (int it = 0; it < iterations; ++it) {
    ops::column_sums(q.data(), col, R, K, false);
    gpu::kernels::sinkhorn_rows<<<unsigned(R), threads, 0, gpu::stream()>>>(
        q.data(), col, K, float(1.0 / double(K)), it + 1 == iterations ? 1.0f : float(1.0 / double(R)));
    SSL_CUDA_CHECK_LAUNCH("sinkhorn_rows");
  }
  return q;
}

}  // namespace ssl
