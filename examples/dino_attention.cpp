// DINO attention maps on Fashion-MNIST (Caron et al. 2021, Fig. 1 / visualize_attention.py).
//
// Takes a DINO ViT-T/4 teacher backbone (a --checkpoint written by
// `dino_fashion_mnist --encoder vit --save-teacher FILE`, or trains one here for --minutes), runs
// test images through it and writes, per image, one row: the image, the last block's [CLS]
// attention of each head over the 7x7 patches (bilinear, over the image), and each head's map
// thresholded to keep 60% of the attention mass.
//
//   dino_attention --minutes 3 --out docs/img/dino_attention.png
//   dino_attention --checkpoint dino_vit.safetensors
#include <CLI/CLI.hpp>
#include <cstdio>
#include <ssl/ssl.hpp>

#include "vit_example_support.hpp"  // load_vit_backbone

using namespace ssl;

int main(int argc, char** argv) {
  CLI::App app{"DINO ViT-T/4 on Fashion-MNIST: write [CLS] attention maps of the last block as a PNG"};
  double minutes = 3;
  int64_t batch = 64, images = 8;
  float keep = 0.6f;
  uint64_t seed = 0;
  int threads = 2, workers = 2;
  std::string checkpoint, out = "docs/img/dino_attention.png", data_dir = data::fashion_mnist_dir();
  app.add_option("--checkpoint", checkpoint, "teacher backbone (safetensors) from dino_fashion_mnist --save-teacher");
  app.add_option("--minutes", minutes, "training budget when no checkpoint is given");
  app.add_option("--batch", batch, "images per training step");
  app.add_option("--images", images, "test images shown (one row each)");
  app.add_option("--keep", keep, "attention mass kept by the thresholded maps");
  app.add_option("--out", out, "PNG file written");
  app.add_option("--seed", seed, "seed");
  app.add_option("--threads", threads, "compute threads");
  app.add_option("--workers", workers, "loader threads");
  app.add_option("--data", data_dir, "folder with the Fashion-MNIST IDX files");
  CLI11_PARSE(app, argc, argv);
  set_num_threads(threads);

  vit<> backbone(vit_options::tiny4(), rng(seed));
  if (!checkpoint.empty()) {
    backbone = ssl_example::load_vit_backbone(checkpoint, seed);
    const vit_options& vo = backbone.options();
    std::printf("loaded the teacher backbone from %s (%lld registers%s%s)\n", checkpoint.c_str(),
                (long long)vo.registers, vo.layer_scale > 0 ? ", LayerScale" : "",
                vo.ffn == ffn_kind::swiglu ? ", SwiGLU" : "");
  } else {
    const auto train = data::load_fashion_mnist(data::split::train, data_dir);
    dino_method<vit<>> method(vit<>(vit_options::tiny4(), rng(seed)),
                              dino_head<>(dino_head_options::w3(), rng(seed).fork(7)),
                              {.teacher_temperature_start = 0.04f, .teacher_temperature = 0.04f,
                               .freeze_last_layer_steps = 100});
    param_list<cpu> params;
    method.collect(params, "");
    const float lr = 5e-4f * float(batch) / 256.0f;
    adamw opt(params, {.lr = lr, .weight_decay = 0.04f}, {no_decay_on_bias_and_norm()});
    data::loader loader(train, augment::dino_views(28, 12, 4, augment::fashion_mnist_normalize()),
                        {.batch_size = batch, .num_workers = workers, .seed = seed});
    trainer_options to;
    to.epochs = 100;
    to.budget_seconds = minutes * 60;
    to.lr = linear_warmup(0.0f, lr, 100);
    to.clip_grad_norm = 3.0;
    const auto sum = ssl::train(method, opt, loader, to);
    std::printf("trained DINO ViT-T/4 for %lld steps (%.0f s), loss %.4f\n", (long long)sum.steps, sum.seconds,
                sum.mean_loss_last_100);
    backbone = method.teacher_encoder();
  }

  const auto test = data::load_fashion_mnist(data::split::test, data_dir);
  images = std::min(images, test.size());
  // the first test image of each class, in class order (then the next ones)
  std::vector<int64_t> pick;
  for (int c = 0; c < 10 && int64_t(pick.size()) < images; ++c)
    for (int64_t i = 0; i < test.size(); ++i)
      if (test.labels()[size_t(i)] == c) {
        pick.push_back(i);
        break;
      }
  for (int64_t i = 0; int64_t(pick.size()) < images; ++i)
    if (std::find(pick.begin(), pick.end(), i) == pick.end()) pick.push_back(i);
  tensor<cpu> raw(shape{images, 1, 28, 28});
  for (int64_t k = 0; k < images; ++k)
    std::copy_n(test.images().data() + pick[size_t(k)] * 784, 784, raw.data() + k * 784);

  const tensor<cpu> maps = eval::cls_attention_maps(backbone, eval::normalized_slice(raw, 0, images,
                                                                                     eval::fashion_mnist_normalization()));
  eval::write_attention_png(out, raw, maps, {.scale = 4, .keep = keep});
  std::printf("wrote %s: %lld images x (image, %lld heads, %lld thresholded maps keeping %.0f%% of the mass)\n",
              out.c_str(), (long long)images, (long long)maps.dim(1), (long long)maps.dim(1), 100.0 * keep);
  return 0;
}
