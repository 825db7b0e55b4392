// SimCLR on Fashion-MNIST on either backend: switching from the CPU to the GPU is one template
// argument. run<cpu> and run<cuda> below are the same code; only B differs:
//
//   simclr method(convnet_s<B>(1, rng(seed)), projection_mlp<B>({...}), nt_xent(T));
//
// With B = cuda the parameters, activations, loss and AdamW state live on the device; the loader's
// augmented batch is uploaded once per step through pinned staging (ssl::train does it), and the
// trained encoder is copied back (copy_state) for the k-NN evaluation on the host.
//
// Build: with CUDA enabled (nvcc found), target `simclr_cuda`.
// Run:   ./simclr_cuda --device cuda --minutes 1     (--device cpu: the same run on the CPU)
#include <CLI/CLI.hpp>
#include <cstdio>
#include <ssl/cuda.hpp>
#include <ssl/ssl.hpp>

#include "example_support.hpp"

using namespace ssl;
using namespace ssl_example;

template <class B>
int run(const in_memory_dataset& train, const in_memory_dataset& test, double base, const train_settings& s,
        float temperature) {
  simclr method(convnet_s<B>(1, rng(s.seed)),
                projection_mlp<B>({.in_dim = 256, .hidden_dim = 256, .out_dim = 128}, rng(s.seed).fork(1)),
                nt_xent(temperature));
  std::printf("training on %s\n", B::name);
  return train_and_report(method, train, test, base, s, "SimCLR");
}

int main(int argc, char** argv) {
  CLI::App app{"SimCLR (ConvNet-S) on Fashion-MNIST on the CPU or the GPU: the backend is one template argument"};
  train_settings s;
  s.minutes = 1;
  float temperature = 0.5f;
  std::string device = "cuda";
  add_common_options(app, s, "images per step (two views each)");
  app.add_option("--temperature", temperature, "NT-Xent temperature");
  app.add_option("--device", device, "cuda or cpu")->check(CLI::IsMember({"cuda", "cpu"}));
  CLI11_PARSE(app, argc, argv);
  set_num_threads(s.threads);
  if (device == "cuda" && !gpu::device_available()) {
    std::printf("no CUDA device on this machine: nothing to do for --device cuda (try --device cpu)\n");
    return 0;
  }
  const auto train = data::load_fashion_mnist(data::split::train, s.data_dir);
  const auto test = data::load_fashion_mnist(data::split::test, s.data_dir);
  const double base = report_random_init_knn(train, test, s.seed, s.baseline_cache);
  return device == "cuda" ? run<cuda>(train, test, base, s, temperature) : run<cpu>(train, test, base, s, temperature);
}
