// Switching a method from the CPU to the GPU is one template argument.
//
// train<cpu>() and train<cuda>() below are the same code: the SimCLR model of workload W1
// (ConvNet-S + projection head + NT-Xent + SGD, written over the ops:: overload sets in
// ssl/backend/cuda/parity/convnet_simclr.cuh) instantiated for either backend. On the GPU the
// batch moves to the device once per step, from pinned memory (copy_to_device); the loss stays
// on the device and is read back only when printed.
//
// Build: with CUDA enabled (nvcc found), target `simclr_cuda`. Run: ./simclr_cuda [steps]
#include <cstdio>
#include <cstdlib>
#include <ssl/backend/cuda/parity/convnet_simclr.cuh>

using namespace ssl;

// Two augmented views of 64 images, stacked as (128, 1, 28, 28). (Synthetic here: shifted
// noise patterns, so that the example needs no data set.)
tensor<cpu> make_views(int step) {
  tensor<cpu> v(shape{128, 1, 28, 28});
  rng g(static_cast<uint64_t>(step));
  for (int64_t i = 0; i < v.numel(); ++i) v[i] = g.uniform();
  return v;
}

template <class B>
void train(int steps) {
  parity::convnet_simclr<B> model(/*seed=*/1);
  tensor<B> x;
  for (int s = 0; s < steps; ++s) {
    const tensor<cpu> views = make_views(s);
    float loss = 0;
    if constexpr (std::is_same_v<B, cuda>) {
      copy_to_device(views, x);                    // once per batch, via pinned staging
      loss = to_host_scalar(model.step(x));        // read back for printing only
    } else {
      loss = model.step(views);
    }
    std::printf("[%s] step %d  NT-Xent %.4f\n", B::name, s, loss);
  }
}

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 5;
  train<cpu>(steps);
  if (gpu::device_available())
    train<cuda>(steps);  // the same numbers, within float tolerance
  else
    std::printf("no CUDA device: the GPU half of the example is skipped\n");
  return 0;
}
