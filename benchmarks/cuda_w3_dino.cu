// W3 (DINO training step, shared/WORKLOADS.md) on the GPU, with the CPU figure of the same code
// beside it: parity::vit_dino<cuda> vs parity::vit_dino<cpu> (one template argument apart). Per step
// the 2 global and 4 local crops of the batch move to the device once each, from pinned memory;
// the loss stays on the device (read back once, after timing). Images per step = batch (64).
//   RESULT W3_gpu img_per_s <v>, RESULT W3_cpu img_per_s <v>, RESULT W3_gpu_over_cpu ratio <v>
// Options: --batch N (64), --steps S (20 timed, after 3 warm-up), --cpu-steps C (2; 0 skips the
// CPU run), --threads T (CPU threads, default OMP_NUM_THREADS or 2), --tf32 (TF32 GEMMs).
#include <ssl/backend/cuda/parity/vit_dino.cuh>

#include <optional>

#include "cuda_step_bench.cuh"

int main(int argc, char** argv) {
  using namespace ssl;
  const ssl_bench::args a{argc, argv};
  const int64_t batch = a.value("--batch", 64);
  const int steps = int(a.value("--steps", 20)), cpu_steps = int(a.value("--cpu-steps", 2));
  // 2 global crops (stacked: 2 batch, 1, 28, 28) and 4 local crops (4 batch, 1, 12, 12), torch.rand.
  tensor<cpu> globals(shape{2 * batch, 1, 28, 28}), locals(shape{4 * batch, 1, 12, 12});
  rng g(7);
  for (int64_t i = 0; i < globals.numel(); ++i) globals[i] = g.uniform();
  for (int64_t i = 0; i < locals.numel(); ++i) locals[i] = g.uniform();

  const int threads = ssl_bench::thread_count(a);
  double gpu_ips = 0;
  if (gpu::device_available()) {
    gpu::set_tf32(a.flag("--tf32"));
    parity::vit_dino<cuda> model(1);
    tensor<cuda> xg, xl;
    gpu_ips = ssl_bench::gpu_step_images_per_second("W3", batch, steps, [&] {
      copy_to_device(globals, xg);  // each crop set's one upload
      copy_to_device(locals, xl);
      return model.step(xg, xl);
    });
  } else {
    std::printf("# cuda_w3_dino: no CUDA device, GPU part skipped\n");
  }
  std::optional<parity::vit_dino<cpu>> cpu_model;  // the same step code on the CPU
  if (cpu_steps > 0) cpu_model.emplace(1);
  const double cpu_ips = ssl_bench::cpu_step_images_per_second("W3", batch, cpu_steps, threads, [&] {
    cpu_model->step(globals, locals);
  });
  ssl_bench::report_gpu_over_cpu("W3", gpu_ips, cpu_ips);
  return 0;
}
