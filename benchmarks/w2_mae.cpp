// W2 of shared/WORKLOADS.md: one MAE training step with the library's modules (ssl::mae over
// ViT-T/4 + mae_decoder: Linear(192,128), 2 blocks dim 128 / 4 heads, learned decoder pos-embed),
// batch 256 images 1x28x28, keep 12 of 49 patches, norm_pix_loss on the masked patches, AdamW
// lr 1.5e-4, betas (0.9, 0.95), weight decay 0.05 on all parameters.
// Step = zero_grad + train_step (mask draw, forward, loss, backward) + opt.step().
// Median ms/step over 20 timed steps after 3 warm-up steps; img/s = 256 / step.
// --profile also times the encoder forward, decoder forward, loss, decoder backward, encoder
// backward and optimizer separately (one extra pass, after the timed steps).
#include <ssl/ssl.hpp>

#include "bench_util.hpp"
#include "peak_memory.hpp"

using namespace ssl;

int main(int argc, char** argv) {
  const ssl_bench::memory_probe memory;  // baseline before the model and data
  const ssl_bench::args a{argc, argv};
  set_num_threads(ssl_bench::thread_count(a));
  const int64_t B = a.value("--batch", 256);
  const int steps = int(a.value("--steps", 20)), warmup = int(a.value("--warmup", 3));

  mae<> method(vit<>(vit_options::tiny4(), rng(0)), mae_decoder<>({}, rng(1)),
               {.mask_ratio = 0.75f, .norm_pix_loss = true, .seed = 2});
  param_list<cpu> params;
  method.collect(params, "");
  adamw opt(params, {.lr = 1.5e-4f, .beta1 = 0.9f, .beta2 = 0.95f, .weight_decay = 0.05f});
  std::vector<tensor<cpu>> views(1, tensor<cpu>(shape{B, 1, 28, 28}));
  rng g(3);
  for (int64_t i = 0; i < views[0].numel(); ++i) views[0][i] = g.uniform();

  auto step = [&] {
    opt.zero_grad();
    method.train_step(views);
    opt.step();
  };
  const auto t = ssl_bench::time_repeats(step, warmup, steps, 0.0, steps);
  ssl_bench::report_step_timing("W2", "W2 MAE step", B, 256, t, a.flag("--samples"));
  memory.report(B == 256 ? "W2" : "W2_b" + std::to_string(B));  // before the --profile passes

  if (a.flag("--profile")) ssl_bench::print_scoped_profile(steps, step);
  if (a.flag("--profile")) {
    // The phases of mae::train_step, run by hand on the same objects (median of `steps` passes).
    auto& enc = method.encoder();
    auto& dec = method.decoder();
    masked_reconstruction loss(true);
    std::vector<double> ef, df, lo, db, eb, op;
    for (int i = 0; i < steps; ++i) {
      opt.zero_grad();
      const token_mask m = method.mask_for_step(B, 49, i);
      auto t0 = ssl_bench::clock_type::now();
      auto latent = enc.forward_tokens(views[0], &m);
      ef.push_back(ssl_bench::seconds_since(t0));
      t0 = ssl_bench::clock_type::now();
      auto pred = dec.forward(latent.y, m);
      df.push_back(ssl_bench::seconds_since(t0));
      t0 = ssl_bench::clock_type::now();
      const auto r = loss(pred.y, ops::patchify(views[0], 4), m.mask);
      lo.push_back(ssl_bench::seconds_since(t0));
      t0 = ssl_bench::clock_type::now();
      auto dl = dec.backward(pred.saved, r.grad_pred);
      db.push_back(ssl_bench::seconds_since(t0));
      t0 = ssl_bench::clock_type::now();
      enc.backward_tokens(latent.saved, dl);
      eb.push_back(ssl_bench::seconds_since(t0));
      t0 = ssl_bench::clock_type::now();
      opt.step();
      op.push_back(ssl_bench::seconds_since(t0));
    }
    ssl_bench::describe("phase encoder forward", ssl_bench::summarize(ef));
    ssl_bench::describe("phase decoder forward", ssl_bench::summarize(df));
    ssl_bench::describe("phase loss (patchify + norm_pix)", ssl_bench::summarize(lo));
    ssl_bench::describe("phase decoder backward", ssl_bench::summarize(db));
    ssl_bench::describe("phase encoder backward", ssl_bench::summarize(eb));
    ssl_bench::describe("phase adamw", ssl_bench::summarize(op));
  }
  return 0;
}
