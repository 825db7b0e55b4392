// Per-layer costs of W1's encoder: each ConvNet-S layer (conv3x3 + BN + ReLU) at W1's shapes
// (batch 512 = 256 images x 2 views, 28x28), timed op by op with the library's CPU ops:
//   conv forward, BN+ReLU forward, BN+ReLU backward, conv backward (dw, and dx except layer 1).
// Prints one line per (layer, op) with the median ms over --steps runs and the share of the sum,
// so a change to one op shows where it moved the step (docs/performance.md, "W1 profile").
//   convnet_layers [--batch 512] [--size 28] [--steps 10] [--threads 2]
#include <ssl/ssl.hpp>

#include "bench_util.hpp"

using namespace ssl;

namespace {

struct layer_shape {
  int64_t in, out, stride;
};

void fill_uniform(tensor<cpu>& t, rng& g, float scale) {
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = scale * (2.0f * g.uniform() - 1.0f);
}

}  // namespace

int main(int argc, char** argv) {
  const ssl_bench::args a{argc, argv};
  set_num_threads(ssl_bench::thread_count(a));
  const int64_t N = a.value("--batch", 512), S = a.value("--size", 28);
  const int steps = int(a.value("--steps", 10));
  const layer_shape layers[] = {{1, 32, 1}, {32, 64, 2}, {64, 128, 2}, {128, 256, 2}};

  rng g(0);
  struct row {
    std::string name;
    double ms;
  };
  std::vector<row> rows;
  double total = 0;
  int64_t H = S;
  int index = 1;
  for (const layer_shape& l : layers) {
    tensor<cpu> x(shape{N, l.in, H, H}), w(shape{l.out, l.in, 3, 3}), y, z, dz, dy, dx, dw(w.shape());
    tensor<cpu> gamma(shape{l.out}), beta(shape{l.out}), dgamma(shape{l.out}), dbeta(shape{l.out});
    fill_uniform(x, g, 1.0f);
    fill_uniform(w, g, 0.1f);
    for (int64_t c = 0; c < l.out; ++c) {
      gamma[c] = 1.0f;
      beta[c] = 0.0f;
    }
    std::vector<float> mean, var, invstd;
    ops::conv2d_forward(x, w, nullptr, l.stride, 1, y);
    ops::batch_norm_forward_train(y, gamma, beta, 1e-5f, true, z, mean, var, invstd);
    dz = tensor<cpu>(z.shape());
    fill_uniform(dz, g, 1e-3f);
    const std::string prefix = "layer " + std::to_string(index) + " (" + std::to_string(l.in) + "->" +
                               std::to_string(l.out) + ", " + std::to_string(H) + "x" + std::to_string(H) + ") ";
    auto time = [&](const std::string& op, auto&& f) {
      const auto t = ssl_bench::time_repeats(f, 1, steps, 0.0, steps);
      rows.push_back({prefix + op, t.median * 1e3});
      total += t.median * 1e3;
    };
    time("conv forward", [&] { ops::conv2d_forward(x, w, nullptr, l.stride, 1, y); });
    time("bn+relu forward", [&] { ops::batch_norm_forward_train(y, gamma, beta, 1e-5f, true, z, mean, var, invstd); });
    time("bn+relu backward",
         [&] { ops::batch_norm_backward_train(dz, y, mean, invstd, gamma, beta, true, dy, dgamma, dbeta); });
    time(index == 1 ? "conv backward (dw)" : "conv backward (dw, dx)",
         [&] { ops::conv2d_backward(x, w, dy, l.stride, 1, index == 1 ? nullptr : &dx, dw, nullptr); });
    H = (H + 2 - 3) / l.stride + 1;
    ++index;
  }
  for (const row& r : rows) std::printf("%-52s %8.2f ms  %5.1f%%\n", r.name.c_str(), r.ms, 100.0 * r.ms / total);
  std::printf("%-52s %8.2f ms\n", "sum", total);
  ssl_bench::report("convnet_layers", "ms_sum", total);
  return 0;
}
