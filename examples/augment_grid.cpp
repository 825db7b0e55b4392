// augment_grid: PNG grids of augmented views, to see what each preset and transform does.
//
//   augment_grid [out_dir] [seed]        (out_dir defaults to docs/img)
//
// Writes, for real Fashion-MNIST images (from $SSL_FASHION_MNIST_DIR or
// /usr/share/datasets/fashion-mnist) and for a synthetic 96x96 RGB image:
//   augment_preset_<name>_fmnist.png, augment_preset_<name>_rgb.png: one row per image,
//       the original then its views (local crops enlarged to the global size);
//   augment_<transform>.png: the RGB image and a Fashion-MNIST image, each followed by
//       7 independent draws of one transform.
// Views are un-normalised for display; images are enlarged by nearest-neighbour.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <ssl/augment.hpp>
#include <ssl/data/idx.hpp>
#include <ssl/data/mnist.hpp>
#include <ssl/io/image.hpp>
#include <ssl/io/image_grid.hpp>
#include <string>
#include <vector>

namespace aug = ssl::augment;
using ssl::cpu;
using ssl::tensor;

namespace {

// A 96x96 RGB test card: colour wheel disc, stripes, a checkerboard and a grey ramp.
tensor<cpu> synthetic_rgb(int size = 96) {
  tensor<cpu> img(ssl::shape{3, size, size});
  const int64_t plane = int64_t(size) * size;
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      const float u = (x + 0.5f) / size, v = (y + 0.5f) / size;
      float rgb[3] = {0.15f + 0.7f * v, 0.2f + 0.3f * u, 0.6f - 0.4f * v};  // background gradient
      const float dx = u - 0.38f, dy = v - 0.42f, r = std::sqrt(dx * dx + dy * dy);
      if (r < 0.28f) {  // hue wheel: angle -> hue, radius -> saturation
        const tensor<cpu> hsv_px = aug::adjust_hue(tensor<cpu>::from(ssl::shape{3, 1, 1}, {1.0f, 1.0f - r / 0.28f, 1.0f - r / 0.28f}),
                                                   std::atan2(dy, dx) / 6.2831853f);
        for (int c = 0; c < 3; ++c) rgb[c] = hsv_px[c];
      } else if (u > 0.72f) {  // stripes
        const bool on = int(v * 12) % 2 == 0;
        rgb[0] = on ? 0.95f : 0.1f;
        rgb[1] = on ? 0.85f : 0.1f;
        rgb[2] = on ? 0.1f : 0.3f;
      } else if (v > 0.76f) {  // checkerboard
        const bool on = (int(u * 16) + int(v * 16)) % 2 == 0;
        for (float& c : rgb) c = on ? 0.9f : 0.05f;
      }
      for (int c = 0; c < 3; ++c) img[c * plane + int64_t(y) * size + x] = rgb[c];
    }
  return img;
}

// Nearest-neighbour enlargement to (side, side) for display.
tensor<cpu> enlarge(const tensor<cpu>& img, int side) {
  return aug::resize_crop(img, 0, 0, int(img.dim(1)), int(img.dim(2)), side, side, aug::interpolation::nearest);
}

// Undo normalize (x * std + mean) and clamp to [0, 1].
tensor<cpu> denormalize(tensor<cpu> v, const aug::normalize& n) {
  const int64_t C = v.dim(0), plane = v.dim(1) * v.dim(2);
  for (int64_t c = 0; c < C; ++c) {
    const size_t k = n.mean.size() == 1 ? 0 : size_t(c);
    for (int64_t i = 0; i < plane; ++i) {
      float& x = v[c * plane + i];
      x = std::min(1.0f, std::max(0.0f, x * n.std[k] + n.mean[k]));
    }
  }
  return v;
}

// One row per image: the original, then the policy's views.
void write_preset(const std::string& path, const std::vector<tensor<cpu>>& images,
                  const std::function<std::vector<tensor<cpu>>(const tensor<cpu>&, ssl::rng&)>& policy,
                  const aug::normalize& norm, int rounds, int side, uint64_t seed) {
  std::vector<tensor<cpu>> cells;
  int per_row = 0;
  for (size_t i = 0; i < images.size(); ++i) {
    ssl::rng g = ssl::rng(seed).fork(i);
    std::vector<tensor<cpu>> row{enlarge(images[i], side)};
    for (int r = 0; r < rounds; ++r)
      for (auto& v : policy(images[i], g)) row.push_back(enlarge(denormalize(std::move(v), norm), side));
    per_row = int(row.size());
    for (auto& c : row) cells.push_back(std::move(c));
  }
  ssl::io::write_png(path, ssl::io::make_grid(cells, per_row, 2, 1.0f));
  std::printf("wrote %s\n", path.c_str());
}

// Rows: each image, then 7 draws of the transform.
template <class A>
void write_transform(const std::string& path, const std::vector<tensor<cpu>>& images, const A& transform, int side,
                     uint64_t seed) {
  std::vector<tensor<cpu>> cells;
  for (size_t i = 0; i < images.size(); ++i) {
    ssl::rng g = ssl::rng(seed).fork(100 + i);
    cells.push_back(enlarge(images[i], side));
    for (int k = 0; k < 7; ++k) {
      tensor<cpu> out = transform(images[i], g);
      if (out.dim(0) == 2) {  // Sobel: show the gradient magnitude
        const int64_t plane = out.dim(1) * out.dim(2);
        tensor<cpu> mag(ssl::shape{1, out.dim(1), out.dim(2)});
        for (int64_t p = 0; p < plane; ++p) mag[p] = std::min(1.0f, 0.25f * std::hypot(out[p], out[plane + p]));
        out = std::move(mag);
      }
      cells.push_back(enlarge(out, side));
    }
  }
  ssl::io::write_png(path, ssl::io::make_grid(cells, 8, 2, 1.0f));
  std::printf("wrote %s\n", path.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  const std::string out_dir = argc > 1 ? argv[1] : "docs/img";
  const uint64_t seed = argc > 2 ? std::stoull(argv[2]) : 2024;
  std::filesystem::create_directories(out_dir);

  // Fashion-MNIST: a T-shirt, a trouser, a sneaker, a bag (first of each class in the train set).
  const std::string dir = ssl::data::fashion_mnist_dir();
  const tensor<cpu> all = ssl::data::read_idx_images(dir + "/train-images-idx3-ubyte.gz");
  const std::vector<int> labels = ssl::data::read_idx_labels(dir + "/train-labels-idx1-ubyte.gz");
  std::vector<tensor<cpu>> fmnist;
  for (int want : {0, 1, 7, 8})
    for (size_t i = 0; i < labels.size(); ++i)
      if (labels[i] == want) {
        tensor<cpu> img(ssl::shape{1, 28, 28});
        std::copy_n(all.data() + int64_t(i) * 784, 784, img.data());
        fmnist.push_back(std::move(img));
        break;
      }
  const std::vector<tensor<cpu>> rgb{synthetic_rgb()};

  const aug::normalize fm = aug::fashion_mnist_normalize(), in = aug::imagenet_normalize();
  const int fm_side = 56, rgb_side = 96;
  // Fashion-MNIST presets (28 px global, 12 px local crops)
  write_preset(out_dir + "/augment_preset_fashion_mnist_simclr_fmnist.png", fmnist, aug::fashion_mnist_simclr(), fm, 3,
               fm_side, seed);
  write_preset(out_dir + "/augment_preset_simclr_fmnist.png", fmnist, aug::simclr_views(28, fm, 0.5f, 0.0f), fm, 3,
               fm_side, seed);
  write_preset(out_dir + "/augment_preset_byol_fmnist.png", fmnist, aug::byol_views(28, fm), fm, 3, fm_side, seed);
  write_preset(out_dir + "/augment_preset_dino_fmnist.png", fmnist, aug::dino_views(28, 12, 6, fm), fm, 1, fm_side, seed);
  write_preset(out_dir + "/augment_preset_mae_fmnist.png", fmnist, aug::mae_views(28, fm), fm, 6, fm_side, seed);
  // RGB presets (96 px global, 40 px local crops)
  write_preset(out_dir + "/augment_preset_simclr_rgb.png", rgb, aug::simclr_views(96, in), in, 3, rgb_side, seed);
  write_preset(out_dir + "/augment_preset_mocov2_rgb.png", rgb, aug::mocov2_views(96, in), in, 3, rgb_side, seed);
  write_preset(out_dir + "/augment_preset_byol_rgb.png", rgb, aug::byol_views(96, in), in, 3, rgb_side, seed);
  write_preset(out_dir + "/augment_preset_dino_rgb.png", rgb, aug::dino_views(96, 40, 6, in), in, 1, rgb_side, seed);
  write_preset(out_dir + "/augment_preset_mae_rgb.png", rgb, aug::mae_views(96, in), in, 6, rgb_side, seed);

  // One picture per transform: the RGB card and a Fashion-MNIST image, resized to one side for the grid.
  const std::vector<tensor<cpu>> both{rgb[0], enlarge(fmnist[0], 96)};
  aug::random_resized_crop crop;
  crop.size_h = crop.size_w = 96;
  aug::affine_resized_crop affine;
  affine.size_h = affine.size_w = 96;
  write_transform(out_dir + "/augment_random_resized_crop.png", both, crop, rgb_side, seed);
  write_transform(out_dir + "/augment_affine_resized_crop.png", both, affine, rgb_side, seed);
  write_transform(out_dir + "/augment_horizontal_flip.png", both, aug::horizontal_flip{}, rgb_side, seed);
  write_transform(out_dir + "/augment_rotation.png", both, aug::rotation{-45.0f, 45.0f, aug::interpolation::bilinear},
                  rgb_side, seed);
  write_transform(out_dir + "/augment_right_angle_rotation.png", both, aug::right_angle_rotation{}, rgb_side, seed);
  write_transform(out_dir + "/augment_color_jitter.png", both, aug::color_jitter{0.8f, 0.8f, 0.8f, 0.2f}, rgb_side, seed);
  write_transform(out_dir + "/augment_brightness_contrast.png", both, aug::brightness_contrast{}, rgb_side, seed);
  write_transform(out_dir + "/augment_grayscale.png", both, aug::random_apply{0.5f, aug::grayscale{}}, rgb_side, seed);
  write_transform(out_dir + "/augment_gaussian_blur.png", both, aug::gaussian_blur{9, 0.1f, 2.0f}, rgb_side, seed);
  write_transform(out_dir + "/augment_gaussian_noise.png", both, aug::gaussian_noise{0.02f, 0.15f}, rgb_side, seed);
  write_transform(out_dir + "/augment_cutout.png", both, aug::cutout{}, rgb_side, seed);
  write_transform(out_dir + "/augment_sobel.png", both, aug::sobel{}, rgb_side, seed);
  write_transform(out_dir + "/augment_solarize.png", both, aug::random_apply{0.5f, aug::solarize{}}, rgb_side, seed);
  return 0;
}
