// GPU GEMM throughput: C = A B, square n in {1024, 4096}, FP32 and TF32 (cuBLAS through
// ssl::ops::gemm), against the device's peak. Timed with CUDA events, median of repeats.
//   RESULT GPU_gemm_n<n>_<fp32|tf32> tflops <value>   and   RESULT GPU_peak_<fp32|tf32> tflops <value>
#include <ssl/cuda.hpp>
#include <ssl/core/rng.hpp>

#include "bench_util.hpp"

namespace {

// Dense peak in TFLOP/s from SM count x boost clock x flop/clock/SM of the architecture
// (FP32 FMA lanes x 2; TF32 dense tensor-core rate). 0 when the architecture is not tabled.
struct peak {
  double fp32 = 0, tf32 = 0;
};
peak device_peak() {
  int major = 0, minor = 0, sms = 0, khz = 0;
  SSL_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0));
  SSL_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, 0));
  SSL_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  SSL_CUDA_CHECK(cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, 0));
  double fp32_per_clk = 0, tf32_per_clk = 0;  // flop per clock per SM
  if (major == 8 && minor == 0) fp32_per_clk = 128, tf32_per_clk = 1024;       // A100
  else if (major == 8) fp32_per_clk = 256, tf32_per_clk = 512;                 // GA10x / Ada
  else if (major == 9) fp32_per_clk = 256, tf32_per_clk = 2048;                // H100 / H200
  else if (major == 10) fp32_per_clk = 256, tf32_per_clk = 4096;               // B200 (approx.)
  const double hz = double(khz) * 1e3 * sms;
  return {fp32_per_clk * hz / 1e12, tf32_per_clk * hz / 1e12};
}

double time_gemm_ms(int64_t n, int reps, const ssl::tensor<ssl::cuda>& A, const ssl::tensor<ssl::cuda>& B,
                    ssl::tensor<ssl::cuda>& C) {
  using namespace ssl;
  cudaEvent_t t0, t1;
  SSL_CUDA_CHECK(cudaEventCreate(&t0));
  SSL_CUDA_CHECK(cudaEventCreate(&t1));
  std::vector<double> samples;
  for (int i = 0; i < reps + 2; ++i) {
    SSL_CUDA_CHECK(cudaEventRecord(t0, gpu::stream()));
    ops::gemm(cuda{}, ops::trans::no, ops::trans::no, n, n, n, 1.0f, A.data(), n, B.data(), n, 0.0f, C.data(), n);
    SSL_CUDA_CHECK(cudaEventRecord(t1, gpu::stream()));
    SSL_CUDA_CHECK(cudaEventSynchronize(t1));
    float ms = 0;
    SSL_CUDA_CHECK(cudaEventElapsedTime(&ms, t0, t1));
    if (i >= 2) samples.push_back(ms);  // two warm-up calls
  }
  cudaEventDestroy(t0);
  cudaEventDestroy(t1);
  return ssl_bench::summarize(samples).median;
}

}  // namespace

int main() {
  using namespace ssl;
  if (!gpu::device_available()) {
    std::printf("# cuda_gemm: no CUDA device, nothing to measure\n");
    return 0;
  }
  std::printf("# device: %s\n", gpu::device_name().c_str());
  const peak pk = device_peak();
  ssl_bench::report("GPU_peak_fp32", "tflops", pk.fp32);
  ssl_bench::report("GPU_peak_tf32", "tflops", pk.tf32);
  for (int64_t n : {1024, 4096}) {
    rng g(static_cast<uint64_t>(n));
    tensor<cpu> a(shape{n, n}), b(shape{n, n});
    for (int64_t i = 0; i < a.numel(); ++i) a[i] = g.uniform(), b[i] = g.uniform();
    const tensor<cuda> A = to_device(a), B = to_device(b);
    tensor<cuda> C(shape{n, n});
    for (bool tf32 : {false, true}) {
      gpu::set_tf32(tf32);
      const double ms = time_gemm_ms(n, n <= 1024 ? 50 : 20, A, B, C);
      const double tflops = 2.0 * double(n) * n * n / (ms * 1e-3) / 1e12;
      const std::string name = "GPU_gemm_n" + std::to_string(n) + (tf32 ? "_tf32" : "_fp32");
      std::printf("# %s: median %.3f ms\n", name.c_str(), ms);
      ssl_bench::report(name, "tflops", tflops);
    }
    gpu::set_tf32(false);
  }
  return 0;
}
