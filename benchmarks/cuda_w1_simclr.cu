// W1 (SimCLR training step, shared/WORKLOADS.md) on the GPU, with the CPU figure of the same
// code beside it: parity::convnet_simclr<cuda> vs parity::convnet_simclr<cpu> (one template
// argument apart). Per step the batch of both views moves to the device once, from pinned
// memory; the loss stays on the device (read back once, after timing).
//   RESULT W1_gpu img_per_s <v>, RESULT W1_cpu img_per_s <v>, RESULT W1_gpu_over_cpu ratio <v>
// Then the same workload through the library's own classes instantiated for the GPU,
// simclr<convnet_s<cuda>, projection_mlp<cuda>> + sgd<cuda> (zero_grad, train_step on the two
// uploaded views, step; train_step reads the loss back, one synchronisation per step):
//   RESULT W1lib_gpu img_per_s <v>
// Options: --batch N (256), --steps S (20 timed, after 3 warm-up), --cpu-steps C (3; 0 skips the
// CPU run), --threads T (CPU threads, default OMP_NUM_THREADS or 2), --tf32 (TF32 GEMMs).
#include <ssl/backend/cuda/parity/convnet_simclr.cuh>
#include <ssl/encoders/convnet_s.hpp>
#include <ssl/heads/projection_mlp.hpp>
#include <ssl/methods/simclr.hpp>
#include <ssl/optim/sgd.hpp>

#include <optional>

#include "cuda_step_bench.cuh"

// Rows [b, e) of the stacked views as one view batch (e - b, 1, 28, 28).
ssl::tensor<ssl::cpu> view_rows(const ssl::tensor<ssl::cpu>& views, int64_t b, int64_t e) {
  ssl::tensor<ssl::cpu> out(ssl::shape{e - b, 1, 28, 28});
  const int64_t per = 28 * 28;
  std::copy_n(views.data() + b * per, out.numel(), out.data());
  return out;
}

int main(int argc, char** argv) {
  using namespace ssl;
  const ssl_bench::args a{argc, argv};
  const int64_t batch = a.value("--batch", 256);
  const int steps = int(a.value("--steps", 20)), cpu_steps = int(a.value("--cpu-steps", 3));
  // Two views of `batch` images, stacked: (2 batch, 1, 28, 28), uniform [0, 1) as torch.rand.
  tensor<cpu> views(shape{2 * batch, 1, 28, 28});
  rng g(7);
  for (int64_t i = 0; i < views.numel(); ++i) views[i] = g.uniform();

  const int threads = ssl_bench::thread_count(a);
  double gpu_ips = 0;
  if (gpu::device_available()) {
    gpu::set_tf32(a.flag("--tf32"));
    parity::convnet_simclr<cuda> model(1);
    tensor<cuda> x;
    gpu_ips = ssl_bench::gpu_step_images_per_second("W1", batch, steps, [&] {
      copy_to_device(views, x);  // the batch's one upload
      return model.step(x);
    });
    // The library's method on the GPU: the one template argument of examples/simclr_cuda.cu.
    simclr method(convnet_s<cuda>(1, rng(0)),
                  projection_mlp<cuda>({.in_dim = 256, .hidden_dim = 256, .out_dim = 128}, rng(1)), nt_xent(0.5f));
    param_list<cuda> params;
    method.collect(params, "");
    sgd opt(params, {.lr = 0.06f, .momentum = 0.9f, .weight_decay = 5e-4f});
    const tensor<cpu> v1 = view_rows(views, 0, batch), v2 = view_rows(views, batch, 2 * batch);
    std::vector<tensor<cuda>> dev_views(2);
    ssl_bench::gpu_step_images_per_second("W1lib", batch, steps, [&] {
      copy_to_device(v1, dev_views[0]);
      copy_to_device(v2, dev_views[1]);
      opt.zero_grad();
      const float loss = method.train_step(dev_views).loss;
      opt.step();
      return tensor<cuda>(shape{1}, loss);
    });
  } else {
    std::printf("# cuda_w1_simclr: no CUDA device, GPU part skipped\n");
  }
  std::optional<parity::convnet_simclr<cpu>> cpu_model;  // the same step code on the CPU
  if (cpu_steps > 0) cpu_model.emplace(1);
  const double cpu_ips = ssl_bench::cpu_step_images_per_second("W1", batch, cpu_steps, threads, [&] {
    cpu_model->step(views);
  });
  ssl_bench::report_gpu_over_cpu("W1", gpu_ips, cpu_ips);
  return 0;
}
