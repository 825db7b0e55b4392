// V1: one ViT-T block (D 192, 3 heads, LN eps 1e-6) forward + backward on ViT-T/4's token shape:
// batch 256 x 50 tokens ([CLS] + 7x7 patches), with the two feed-forwards of transformer_block:
//   V1          timm's GELU MLP (fc1 192 -> 768, fc2 768 -> 192)
//   V1_swiglu   DINOv2's SwiGLU (w12 192 -> 2 x 512, silu(a) * b, w3 512 -> 192; the same weight count)
// Step = zero grads + forward + backward of a random cotangent (no optimiser). Median ms over
// --steps timed steps after --warmup; img/s = batch / step. benchmarks/torch_reference.py V1 runs
// the same blocks in PyTorch; scripts/bench --workloads V1 prints both and the ratio.
//   vit_block [--batch 256] [--steps 20] [--warmup 3] [--threads 2] [--samples] [--profile] [--split]
// --profile (with -DSSL_PROFILE, best with --threads 1): the scoped CPU timers of each block's step.
// --split: the attention core and the four linears timed apart (GFLOP/s of each group).
#include <ssl/ssl.hpp>

#include "bench_util.hpp"

using namespace ssl;

namespace {
/// --split: the block's two groups of products timed apart at the same shapes: the attention core
/// (ops::attention_forward + backward: 6 products of 50 x 50 x 64 per (sample, head), 1.47 GFLOP)
/// and the four linears' forward + backward (qkv, proj, fc1, fc2 on 12,800 tokens, 34.0 GFLOP).
void split_gemm_time(const tensor<cpu>& x, const tensor<cpu>& dy, int steps) {
  const int64_t N = x.dim(0), T = x.dim(1), D = x.dim(2), H = 3;
  rng g(2);
  tensor<cpu> qkv(shape{N, T, 3 * D}), hidden(shape{N, T, 4 * D}), probs;
  for (int64_t i = 0; i < qkv.numel(); ++i) qkv[i] = g.normal();
  for (int64_t i = 0; i < hidden.numel(); ++i) hidden[i] = g.normal();
  const float scale = 1.0f / std::sqrt(float(D / H));
  const auto ta = ssl_bench::time_repeats(
      [&] { ops::attention_backward(qkv, probs, H, scale, ops::attention_forward(qkv, H, scale, &probs)); }, 1, steps,
      0.0, steps);
  linear<> qkv_l(D, 3 * D, true, rng(1)), proj(D, D, true, rng(2)), fc1(D, 4 * D, true, rng(3)), fc2(4 * D, D, true, rng(4));
  const auto tl = ssl_bench::time_repeats(
      [&] {
        auto a = qkv_l.forward(x);
        qkv_l.backward(a.saved, a.y);
        auto b = proj.forward(x);
        proj.backward(b.saved, dy);
        auto c = fc1.forward(x);
        fc1.backward(c.saved, c.y);
        auto d = fc2.forward(hidden);
        fc2.backward(d.saved, dy);
      },
      1, steps, 0.0, steps);
  const double attn_flop = double(N) * H * 6 * 2 * T * T * (D / H);
  const double linear_flop = 3.0 * 2 * double(N * T) * (D * 3 * D + D * D + 2 * D * 4 * D);
  ssl_bench::describe("attention core fwd+bwd", ta);
  ssl_bench::describe("four linears fwd+bwd", tl);
  std::printf("# attention core %.2f GFLOP at %.1f GFLOP/s, linears %.2f GFLOP at %.1f GFLOP/s\n", attn_flop * 1e-9,
              attn_flop * 1e-9 / ta.median, linear_flop * 1e-9, linear_flop * 1e-9 / tl.median);
}
}  // namespace

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
  if (a.flag("--split")) split_gemm_time(x, dy, steps);
  return 0;
}
