// W1 (SimCLR training step, shared/WORKLOADS.md) on the GPU, with the CPU figure of the same
// code beside it: parity::convnet_simclr<cuda> vs parity::convnet_simclr<cpu> (one template
// argument apart). Per step the batch of both views moves to the device once, from pinned
// memory; the loss stays on the device (read back once, after timing).
//   RESULT W1_gpu img_per_s <v>, RESULT W1_cpu img_per_s <v>, RESULT W1_gpu_over_cpu ratio <v>
// Options: --batch N (256), --steps S (20 timed, after 3 warm-up), --cpu-steps C (3; 0 skips the
// CPU run), --threads T (CPU threads, default OMP_NUM_THREADS or 2), --tf32 (TF32 GEMMs).
#include <ssl/backend/cuda/parity/convnet_simclr.cuh>

#include "bench_util.hpp"

int main(int argc, char** argv) {
  using namespace ssl;
  const ssl_bench::args a{argc, argv};
  const int64_t batch = a.value("--batch", 256);
  const int steps = int(a.value("--steps", 20)), cpu_steps = int(a.value("--cpu-steps", 3));
  // Two views of `batch` images, stacked: (2 batch, 1, 28, 28), uniform [0, 1) as torch.rand.
  tensor<cpu> views(shape{2 * batch, 1, 28, 28});
  rng g(7);
  for (int64_t i = 0; i < views.numel(); ++i) views[i] = g.uniform();

  double gpu_ips = 0, cpu_ips = 0;
  if (gpu::device_available()) {
    std::printf("# device: %s\n", gpu::device_name().c_str());
    gpu::set_tf32(a.flag("--tf32"));
    parity::convnet_simclr<cuda> model(1);
    tensor<cuda> x;
    cudaEvent_t t0, t1;
    SSL_CUDA_CHECK(cudaEventCreate(&t0));
    SSL_CUDA_CHECK(cudaEventCreate(&t1));
    std::vector<double> samples;
    tensor<cuda> loss;
    for (int s = 0; s < steps + 3; ++s) {
      SSL_CUDA_CHECK(cudaEventRecord(t0, gpu::stream()));
      copy_to_device(views, x);  // the batch's one upload
      loss = model.step(x);
      SSL_CUDA_CHECK(cudaEventRecord(t1, gpu::stream()));
      SSL_CUDA_CHECK(cudaEventSynchronize(t1));  // for the timing only
      float ms = 0;
      SSL_CUDA_CHECK(cudaEventElapsedTime(&ms, t0, t1));
      if (s >= 3) samples.push_back(ms * 1e-3);
    }
    const ssl_bench::timing t = ssl_bench::summarize(samples);
    ssl_bench::describe("W1 GPU step", t);
    std::printf("# W1 GPU loss after %d steps: %.5f\n", steps + 3, to_host_scalar(loss));
    gpu_ips = double(batch) / t.median;
    ssl_bench::report("W1_gpu", "ms_per_step", t.median * 1e3);
    ssl_bench::report("W1_gpu", "img_per_s", gpu_ips);
  } else {
    std::printf("# cuda_w1_simclr: no CUDA device, GPU part skipped\n");
  }
  if (cpu_steps > 0) {
    set_num_threads(ssl_bench::thread_count(a));
    parity::convnet_simclr<cpu> model(1);
    const ssl_bench::timing t = ssl_bench::time_repeats([&] { model.step(views); }, 1, cpu_steps, 0.0, cpu_steps);
    ssl_bench::describe("W1 CPU step (" + std::to_string(num_threads()) + " threads)", t);
    cpu_ips = double(batch) / t.median;
    ssl_bench::report("W1_cpu", "img_per_s", cpu_ips);
  }
  if (gpu_ips > 0 && cpu_ips > 0) ssl_bench::report("W1_gpu_over_cpu", "ratio", gpu_ips / cpu_ips);
  return 0;
}
