// W1 of shared/WORKLOADS.md: one SimCLR training step (ConvNet-S + 256-256-128 projection head,
// NT-Xent T = 0.5, SGD lr 0.06 momentum 0.9 wd 5e-4), batch 256 images x 2 views run as one
// batch of 512. Median ms/step over 20 timed steps after 3 warm-up steps; img/s = 256 / step.
// --batch N and --size S change the workload for the scaling table (docs/performance.md);
// --profile prints the time of each phase (forward, loss, backward, optimizer).
// Also prints the process's peak resident memory (peak_memory.hpp): run one configuration per process.
#include <ssl/ssl.hpp>

#include "bench_util.hpp"
#include "peak_memory.hpp"

using namespace ssl;

int main(int argc, char** argv) {
  const ssl_bench::memory_probe memory;  // baseline before the model and data
  const ssl_bench::args a{argc, argv};
  set_num_threads(ssl_bench::thread_count(a));
  const int64_t B = a.value("--batch", 256), S = a.value("--size", 28);
  const int steps = int(a.value("--steps", 20)), warmup = int(a.value("--warmup", 3));

  simclr method(convnet_s<>(1, rng(0)), projection_mlp<>({.in_dim = 256, .hidden_dim = 256, .out_dim = 128}, rng(1)),
                nt_xent(0.5f));
  param_list<cpu> params;
  method.collect(params, "");
  sgd opt(params, {.lr = 0.06f, .momentum = 0.9f, .weight_decay = 5e-4f});
  std::vector<tensor<cpu>> views(2, tensor<cpu>(shape{B, 1, S, S}));
  rng g(2);
  for (auto& v : views)
    for (int64_t i = 0; i < v.numel(); ++i) v[i] = g.uniform();

  auto step = [&] {
    opt.zero_grad();
    method.train_step(views);
    opt.step();
  };
  const auto t = ssl_bench::time_repeats(step, warmup, steps, 0.0, steps);
  ssl_bench::describe("W1 SimCLR step (batch " + std::to_string(B) + ", " + std::to_string(S) + "x" +
                          std::to_string(S) + ")",
                      t);
  const std::string w = (B == 256 && S == 28) ? "W1" : "W1_b" + std::to_string(B) + "_s" + std::to_string(S);
  ssl_bench::report(w, "ms_per_step", t.median * 1e3);
  ssl_bench::report(w, "img_per_s", double(B) / t.median);
  memory.report(w);
  return 0;
}
