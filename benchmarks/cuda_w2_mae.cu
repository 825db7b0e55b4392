// W2 (MAE training step, shared/WORKLOADS.md) on the GPU, with the CPU figure of the same code
// beside it: parity::vit_mae<cuda> vs parity::vit_mae<cpu> (one template argument apart). Per step
// the batch moves to the device once, from pinned memory, and the mask is drawn on the host; the
// loss stays on the device (read back once, after timing).
//   RESULT W2_gpu img_per_s <v>, RESULT W2_cpu img_per_s <v>, RESULT W2_gpu_over_cpu ratio <v>
// Options: --batch N (256), --steps S (20 timed, after 3 warm-up), --cpu-steps C (2; 0 skips the
// CPU run), --threads T (CPU threads, default OMP_NUM_THREADS or 2), --tf32 (TF32 GEMMs).
#include <ssl/backend/cuda/parity/vit_mae.cuh>

#include <optional>

#include "cuda_step_bench.cuh"

int main(int argc, char** argv) {
  using namespace ssl;
  const ssl_bench::args a{argc, argv};
  const int64_t batch = a.value("--batch", 256);
  const int steps = int(a.value("--steps", 20)), cpu_steps = int(a.value("--cpu-steps", 2));
  // A batch of images, uniform [0, 1) as torch.rand.
  tensor<cpu> images(shape{batch, 1, 28, 28});
  rng g(7);
  for (int64_t i = 0; i < images.numel(); ++i) images[i] = g.uniform();

  const int threads = ssl_bench::thread_count(a);
  double gpu_ips = 0;
  if (gpu::device_available()) {
    gpu::set_tf32(a.flag("--tf32"));
    parity::vit_mae<cuda> model(1);
    tensor<cuda> x;
    gpu_ips = ssl_bench::gpu_step_images_per_second("W2", batch, steps, [&] {
      copy_to_device(images, x);  // the batch's one upload
      return model.step(x);       // mask drawn on the host for this step
    });
  } else {
    std::printf("# cuda_w2_mae: no CUDA device, GPU part skipped\n");
  }
  std::optional<parity::vit_mae<cpu>> cpu_model;  // the same step code on the CPU
  if (cpu_steps > 0) cpu_model.emplace(1);
  const double cpu_ips = ssl_bench::cpu_step_images_per_second("W2", batch, cpu_steps, threads, [&] {
    cpu_model->step(images);
  });
  ssl_bench::report_gpu_over_cpu("W2", gpu_ips, cpu_ips);
  return 0;
}
