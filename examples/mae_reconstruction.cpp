// MAE reconstructions on Fashion-MNIST test images: one row per image, original | masked | reconstruction.
//
// Trains ViT-T/4 + the W2 decoder for --minutes with the Q4 recipe (as mae_fashion_mnist), or loads
// the model from --checkpoint (written by mae_fashion_mnist --checkpoint), then masks 75% of the
// patches of a few test images and writes a PNG grid. With norm_pix loss the predictions are
// per-patch normalised; they are shown de-normalised with the hidden patch's own mean and std
// (as in MAE's visualisation). Visible patches in the reconstruction column are the originals.
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <ssl/ssl.hpp>

using namespace ssl;

int main(int argc, char** argv) {
  CLI::App app{"MAE (ViT-T/4) reconstructions of Fashion-MNIST test images as a PNG"};
  double minutes = 2;
  int64_t count = 8;
  uint64_t seed = 0;
  int threads = 2, workers = 2;
  std::string out = "docs/img/mae_reconstruction.png", checkpoint, data_dir = data::fashion_mnist_dir();
  app.add_option("--minutes", minutes, "training budget when no checkpoint is given");
  app.add_option("--checkpoint", checkpoint, "load the model from this checkpoint instead of training");
  app.add_option("--count", count, "number of test images shown");
  app.add_option("--out", out, "PNG file written");
  app.add_option("--seed", seed, "seed of weights, data order and masks");
  app.add_option("--threads", threads, "compute threads");
  app.add_option("--workers", workers, "loader threads");
  app.add_option("--data", data_dir, "folder with the Fashion-MNIST IDX files");
  CLI11_PARSE(app, argc, argv);
  set_num_threads(threads);
  check<value_error>(count >= 1, "--count must be >= 1, got ", count);

  const auto test = data::load_fashion_mnist(data::split::test, data_dir);
  mae<> method(vit<>(vit_options::tiny4(), rng(seed)), mae_decoder<>({}, rng(seed).fork(1)), {.seed = seed});
  param_list<cpu> params;
  method.collect(params, "");
  if (!checkpoint.empty()) {
    const checkpoint_content c = read_checkpoint(checkpoint);
    restore_tensors(model_tensors(params), c.model, checkpoint);
    std::printf("loaded %s (step %lld)\n", checkpoint.c_str(), (long long)c.state.step);
  } else {
    const auto train = data::load_fashion_mnist(data::split::train, data_dir);
    adamw opt(params, {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.95f, .weight_decay = 0.05f});
    data::loader loader(train, augment::mae_views(28, augment::fashion_mnist_normalize()),
                        {.batch_size = 256, .shuffle = true, .drop_last = true, .num_workers = workers, .seed = seed});
    trainer_options to;
    to.epochs = 100;
    to.budget_seconds = minutes * 60;
    to.lr = linear_warmup(0.0f, 1e-3f, 100);
    const train_summary sum = ssl::train(method, opt, loader, to);
    std::printf("trained %lld steps in %.0f s, final loss %.4f\n", (long long)sum.steps, sum.seconds,
                sum.mean_loss_last_100);
  }

  // The first `count` test images, normalised as in training.
  const auto norm = eval::fashion_mnist_normalization();
  const tensor<cpu> x = eval::normalized_slice(test.images(), 0, count, norm);
  const token_mask m = method.mask_for_step(count, 49, 1000003);
  const tensor<cpu> pred = method.reconstruct(x, m);   // (count, 49, 16)
  const tensor<cpu> target = ops::patchify(x, 4);      // (count, 49, 16)
  tensor<cpu> masked = target, recon = target;
  for (int64_t r = 0; r < count * 49; ++r) {
    if (m.mask[r] == 0.0f) continue;
    const float* t = target.data() + r * 16;
    double mean = 0, var = 0;
    for (int p = 0; p < 16; ++p) mean += t[p];
    mean /= 16;
    for (int p = 0; p < 16; ++p) var += (t[p] - mean) * (t[p] - mean);
    const double sd = method.options().norm_pix_loss ? std::sqrt(var / 15 + 1e-6) : 1.0;
    if (!method.options().norm_pix_loss) mean = 0;
    for (int p = 0; p < 16; ++p) {
      masked[r * 16 + p] = (0.5f - norm.mean[0]) / norm.std[0];  // grey
      recon[r * 16 + p] = float(pred[r * 16 + p] * sd + mean);
    }
  }
  auto to_image = [&](const tensor<cpu>& patches, int64_t i) {
    tensor<cpu> img = ops::unpatchify(patches, 1, 4, 7, 7);
    tensor<cpu> one(shape{1, 28, 28});
    for (int64_t k = 0; k < 784; ++k) one[k] = std::clamp(img[i * 784 + k] * norm.std[0] + norm.mean[0], 0.0f, 1.0f);
    return one;
  };
  std::vector<tensor<cpu>> cells;
  for (int64_t i = 0; i < count; ++i) {
    cells.push_back(to_image(target, i));
    cells.push_back(to_image(masked, i));
    cells.push_back(to_image(recon, i));
  }
  io::write_png(out, io::make_grid(cells, 3, 2, 1.0f));
  std::printf("wrote %s (%lld rows: original | masked | reconstruction)\n", out.c_str(), (long long)count);
  return 0;
}
