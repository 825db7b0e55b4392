// W3 of shared/WORKLOADS.md: one DINO training step with the library's modules (ssl::dino_method
// over ViT-T/4 + dino_head 192-512-512-128 -> weight-normed 4096, g frozen), batch 64 images,
// 2 global crops 64x1x28x28 + 4 local crops 64x1x12x12 (precomputed). Teacher = EMA copy,
// inference only, on the 128 global crops; student backbone once per resolution (128 global,
// 256 local), head once on all 384 CLS outputs. Loss: teacher temperature 0.04, student 0.1,
// center momentum 0.9. AdamW lr 1.25e-4, weight decay 0.04 (all parameters); then center
// update and teacher EMA with constant momentum 0.996 (method.after_step).
// Median ms/step over 20 timed steps after 3 warm-up steps; img/s = 64 / step.
// --profile also times teacher / student forward + loss + backward / optimizer / after_step.
#include <ssl/ssl.hpp>

#include "bench_util.hpp"
#include "peak_memory.hpp"

using namespace ssl;

int main(int argc, char** argv) {
  const ssl_bench::memory_probe memory;  // baseline before the model and data
  const ssl_bench::args a{argc, argv};
  set_num_threads(ssl_bench::thread_count(a));
  const int64_t B = a.value("--batch", 64);
  const int steps = int(a.value("--steps", 20)), warmup = int(a.value("--warmup", 3));

  dino_options o = dino_options::w3();
  o.cosine_momentum = false;  // W3: constant 0.996
  dino_method<vit<>> method(vit<>(vit_options::tiny4(), rng(0)), dino_head<>(dino_head_options::w3(), rng(1)), o);
  param_list<cpu> params;
  method.collect(params, "");
  adamw opt(params, {.lr = 1.25e-4f, .weight_decay = 0.04f});
  std::vector<tensor<cpu>> views;
  rng g(2);
  for (int v = 0; v < 6; ++v) {
    const int64_t s = v < 2 ? 28 : 12;
    views.emplace_back(shape{B, 1, s, s});
    for (int64_t i = 0; i < views.back().numel(); ++i) views.back()[i] = g.uniform();
  }

  int64_t done = 0;
  auto step = [&] {
    opt.zero_grad();
    method.train_step(views);
    opt.step();
    method.after_step({.step = ++done, .total_steps = 1000});
  };
  const auto t = ssl_bench::time_repeats(step, warmup, steps, 0.0, steps);
  ssl_bench::report_step_timing("W3", "W3 DINO step", B, 64, t, a.flag("--samples"));
  memory.report(B == 64 ? "W3" : "W3_b" + std::to_string(B));  // before the --profile passes

  if (a.flag("--profile")) ssl_bench::print_scoped_profile(steps, step);
  if (a.flag("--profile")) {
    // Teacher forward alone (what train_step runs first), then the rest of train_step, then the
    // optimizer and after_step (center + EMA).
    tensor<cpu> xg(shape{2 * B, 1, 28, 28});
    std::copy_n(views[0].data(), B * 784, xg.data());
    std::copy_n(views[1].data(), B * 784, xg.data() + B * 784);
    std::vector<double> tf, st, op, ema;
    for (int i = 0; i < steps; ++i) {
      opt.zero_grad();
      auto t0 = ssl_bench::clock_type::now();
      const tensor<cpu> to = method.teacher_head().infer(method.teacher_encoder().infer(xg));
      tf.push_back(ssl_bench::seconds_since(t0));
      t0 = ssl_bench::clock_type::now();
      method.train_step(views);
      st.push_back(ssl_bench::seconds_since(t0));
      t0 = ssl_bench::clock_type::now();
      opt.step();
      op.push_back(ssl_bench::seconds_since(t0));
      t0 = ssl_bench::clock_type::now();
      method.after_step({.step = ++done, .total_steps = 1000});
      ema.push_back(ssl_bench::seconds_since(t0));
    }
    const auto teacher = ssl_bench::summarize(tf);
    ssl_bench::describe("phase teacher forward (backbone + head)", teacher);
    auto rest = st;
    for (size_t i = 0; i < rest.size(); ++i) rest[i] -= tf[i];
    ssl_bench::describe("phase train_step minus teacher (student fwd + loss + bwd)", ssl_bench::summarize(rest));
    ssl_bench::describe("phase adamw", ssl_bench::summarize(op));
    ssl_bench::describe("phase after_step (center + teacher EMA)", ssl_bench::summarize(ema));
  }
  return 0;
}
