// V1: one ViT-T block (D 192, 3 heads, LN eps 1e-6) forward + backward on ViT-T/4's token shape:
// batch 256 x 50 tokens ([CLS] + 7x7 patches), with the two feed-forwards of transformer_block:
//   V1          timm's GELU MLP (fc1 192 -> 768, fc2 768 -> 192)
//   V1_swiglu   DINOv2's SwiGLU (w12 192 -> 2 x 512, silu(a) * b, w3 512 -> 192; the same weight count)
// Step = zero grads + forward + backward of a random cotangent (no optimiser). Median ms over
// --steps timed steps after --warmup; img/s = batch / step. benchmarks/torch_reference.py V1 runs
// the same blocks in PyTorch; scripts/bench --workloads V1 prints both and the ratio.
//   vit_block [--batch 256] [--steps 20] [--warmup 3] [--threads 2] [--samples] [--profile]
// --profile (with -DSSL_PROFILE, best with --threads 1): the scoped CPU timers of each block's step.
#include <ssl/ssl.hpp>

#include "bench_util.hpp"

using namespace ssl;

int main(int argc, char** argv) {
  const ssl_bench::args a{argc, argv};
  set_num_threads(ssl_bench::thread_count(a));
  const int64_t B = a.value("--batch", 256), T = 50, D = 192;
  const int steps = int(a.value("--steps", 20)), warmup = int(a.value("--warmup", 3));
  rng g(0);
  tensor<cpu> x(shape{B, T, D}), dy(shape{B, T, D});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = g.normal();
  for (int64_t i = 0; i < dy.numel(); ++i) dy[i] = 1e-3f * g.normal();
  for (const ffn_kind ffn : {ffn_kind::mlp, ffn_kind::swiglu}) {
    transformer_block<> block({.dim = D, .heads = 3, .ffn = ffn}, rng(1));
    param_list<cpu> params;
    block.collect(params, "");
    auto step = [&] {
      for (auto& p : params) p.p->grad.zero();
      auto out = block.forward(x);
      block.backward(out.saved, dy);
    };
    const auto t = ssl_bench::time_repeats(step, warmup, steps, 0.0, steps);
    const bool glu = ffn == ffn_kind::swiglu;
    ssl_bench::report_step_timing(glu ? "V1_swiglu" : "V1",
                                  glu ? "V1 ViT-T block, SwiGLU feed-forward (H 512)" : "V1 ViT-T block, GELU MLP (H 768)",
                                  B, 256, t, a.flag("--samples"));
    if (a.flag("--profile")) ssl_bench::print_scoped_profile(steps, step);  // built with -DSSL_PROFILE
  }
  return 0;
}
