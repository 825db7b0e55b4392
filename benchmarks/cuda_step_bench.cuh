#pragma once
// The timing protocol shared by the GPU training-step benchmarks (cuda_w1_simclr, cuda_w2_mae,
// cuda_w3_dino): the GPU step timed with CUDA events on the library's stream (`warmup` untimed
// steps, then `steps` timed, median), then the CPU figure of the same step code, then the ratio.
//   RESULT <W>_gpu ms_per_step / img_per_s, RESULT <W>_cpu img_per_s, RESULT <W>_gpu_over_cpu ratio
#include <ssl/backend/cuda/buffer.cuh>
#include <ssl/backend/cuda/context.cuh>
#include <string>
#include <vector>

#include "bench_util.hpp"

namespace ssl_bench {

/// `step()` uploads its batch (from pinned memory) and runs one training step on the device,
/// returning the loss as a device tensor. Returns images/s (0 when there is no device).
template <class Step>
double gpu_step_images_per_second(const std::string& workload, int64_t images_per_step, int steps, Step&& step,
                                  int warmup = 3) {
  if (!ssl::gpu::device_available()) {
    std::printf("# %s: no CUDA device, GPU part skipped\n", workload.c_str());
    return 0;
  }
  std::printf("# device: %s\n", ssl::gpu::device_name().c_str());
  cudaEvent_t t0, t1;
  SSL_CUDA_CHECK(cudaEventCreate(&t0));
  SSL_CUDA_CHECK(cudaEventCreate(&t1));
  std::vector<double> samples;
  ssl::tensor<ssl::cuda> loss;
  for (int s = 0; s < steps + warmup; ++s) {
    SSL_CUDA_CHECK(cudaEventRecord(t0, ssl::gpu::stream()));
    loss = step();
    SSL_CUDA_CHECK(cudaEventRecord(t1, ssl::gpu::stream()));
    SSL_CUDA_CHECK(cudaEventSynchronize(t1));  // for the timing only
    float ms = 0;
    SSL_CUDA_CHECK(cudaEventElapsedTime(&ms, t0, t1));
    if (s >= warmup) samples.push_back(ms * 1e-3);
  }
  SSL_CUDA_CHECK(cudaEventDestroy(t0));
  SSL_CUDA_CHECK(cudaEventDestroy(t1));
  const timing t = summarize(samples);
  describe(workload + " GPU step", t);
  std::printf("# %s GPU loss after %d steps: %.5f\n", workload.c_str(), steps + warmup, ssl::to_host_scalar(loss));
  report(workload + "_gpu", "ms_per_step", t.median * 1e3);
  report(workload + "_gpu", "img_per_s", double(images_per_step) / t.median);
  return double(images_per_step) / t.median;
}

/// The same step code on the CPU with `threads` threads, `steps` timed after one warm-up
/// (0 steps: skipped, returns 0).
template <class Step>
double cpu_step_images_per_second(const std::string& workload, int64_t images_per_step, int steps, int threads,
                                  Step&& step) {
  if (steps <= 0) return 0;
  ssl::set_num_threads(threads);
  const timing t = time_repeats(step, 1, steps, 0.0, steps);
  describe(workload + " CPU step (" + std::to_string(ssl::num_threads()) + " threads)", t);
  report(workload + "_cpu", "img_per_s", double(images_per_step) / t.median);
  return double(images_per_step) / t.median;
}

inline void report_gpu_over_cpu(const std::string& workload, double gpu_ips, double cpu_ips) {
  if (gpu_ips > 0 && cpu_ips > 0) report(workload + "_gpu_over_cpu", "ratio", gpu_ips / cpu_ips);
}

}  // namespace ssl_bench
