// export_features: takes the ConvNet-S encoder out of a training checkpoint (or a weights file)
// and writes, for the first --count Fashion-MNIST test images, the normalised inputs and the
// encoder's eval-mode features to one safetensors file:
//   "images"   (count, 1, 28, 28)  test images after (x - 0.2860) / 0.3530
//   "features" (count, 256)        encoder.infer(images)
//   "labels"   (count,)            class indices, as floats
// The features are what k-NN and the linear probe see; scripts/check_torch_load.py uses the file
// to prove that PyTorch, given the checkpoint through docs/pytorch.md's three lines, computes the
// same features.
//   ssl_train --method simclr --minutes 5 --checkpoint simclr.safetensors
//   export_features --checkpoint simclr.safetensors --out simclr_features.safetensors
#include <CLI/CLI.hpp>
#include <cstdio>
#include <ssl/data/mnist.hpp>
#include <ssl/encoders/convnet_s.hpp>
#include <ssl/eval/features.hpp>
#include <ssl/io/module_weights.hpp>

using namespace ssl;

int main(int argc, char** argv) {
  CLI::App app{"export_features: ConvNet-S features of Fashion-MNIST test images from a checkpoint"};
  std::string checkpoint, prefix = "encoder", out = "features.safetensors", data_dir = data::fashion_mnist_dir();
  int64_t count = 256;
  app.add_option("--checkpoint", checkpoint, "training checkpoint or weights file (safetensors)")->required();
  app.add_option("--prefix", prefix, "name prefix of the encoder in the checkpoint ('' for a weights file)");
  app.add_option("--out", out, "output safetensors file");
  app.add_option("--count", count, "number of test images")->check(CLI::Range(int64_t(1), int64_t(10000)));
  app.add_option("--data", data_dir, "folder with the Fashion-MNIST IDX files");
  CLI11_PARSE(app, argc, argv);

  convnet_s<> encoder(1, rng(0));
  load_module_weights(checkpoint, encoder, prefix);
  const auto test = data::load_fashion_mnist(data::split::test, data_dir);
  const tensor<cpu> images = eval::normalized_slice(test.images(), 0, count, eval::fashion_mnist_normalization());
  const tensor<cpu> features = encoder.infer(images);
  tensor<cpu> labels(shape{count});
  for (int64_t i = 0; i < count; ++i) labels[i] = float(test.labels()[size_t(i)]);
  save_safetensors(out, {{"images", images}, {"features", features}, {"labels", labels}});
  std::printf("wrote %s: %lld images, features (%lld, %lld)\n", out.c_str(), (long long)count,
              (long long)features.dim(0), (long long)features.dim(1));
  return 0;
}
