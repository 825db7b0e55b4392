// Composition: compose, random_apply, multi_view, asymmetric_views, multi_crop and the concepts.
#include <catch2/catch.hpp>
#include <ssl/augment.hpp>
#include <ssl/data/loader.hpp>

#include "support/fixtures.hpp"

namespace aug = ssl::augment;
using ssl::tensor;
using ssl::cpu;

namespace {
// A transform that adds a constant: makes the order of composition visible.
struct add_const {
  float value = 1;
  tensor<cpu> operator()(const tensor<cpu>& img, ssl::rng&) const {
    tensor<cpu> out = img;
    for (int64_t i = 0; i < out.numel(); ++i) out[i] += value;
    return out;
  }
};
struct not_an_augmentation {
  int operator()(const tensor<cpu>&) const { return 0; }
};
tensor<cpu> ramp(int64_t c, int64_t h, int64_t w) {
  tensor<cpu> t(ssl::shape{c, h, w});
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = float(i % 97) / 96.0f;
  return t;
}
}  // namespace

static_assert(ssl::Augmentation<aug::random_resized_crop>);
static_assert(ssl::Augmentation<aug::color_jitter>);
static_assert(ssl::Augmentation<aug::compose<aug::horizontal_flip, aug::solarize>>);
static_assert(ssl::Augmentation<aug::random_apply<aug::grayscale>>);
static_assert(ssl::Augmentation<add_const>);
static_assert(!ssl::Augmentation<not_an_augmentation>);
static_assert(!ssl::Augmentation<int>);
static_assert(ssl::ViewPolicy<aug::multi_view<aug::sobel>>);
static_assert(ssl::ViewPolicy<aug::dino_policy>);
static_assert(!ssl::ViewPolicy<aug::sobel>);
// the data loader consumes the presets
static_assert(ssl::data::view_policy<aug::dino_policy>);
static_assert(ssl::data::view_policy<aug::multi_view<aug::fashion_mnist_simclr_view>>);

TEST_CASE("compose applies its parts in order") {
  const tensor<cpu> img = ramp(1, 4, 4);
  ssl::rng g(0);
  // (x + 1) then solarize at 1.5 differs from solarize then (x + 1)
  const aug::compose a{add_const{1.0f}, aug::solarize{1.5f}};
  const aug::compose b{aug::solarize{1.5f}, add_const{1.0f}};
  const tensor<cpu> ya = a(img, g), yb = b(img, g);
  for (int64_t i = 0; i < img.numel(); ++i) {
    const float x1 = img[i] + 1.0f;
    CHECK(ya[i] == Approx(x1 >= 1.5f ? 1.0f - x1 : x1));
    CHECK(yb[i] == Approx(img[i] + 1.0f));
  }
  auto c = aug::compose{add_const{1.0f}, add_const{2.0f}};
  c.get<1>().value = 5.0f;
  CHECK(c(img, g)[0] == Approx(img[0] + 6.0f));
}

TEST_CASE("random_apply applies with probability p") {
  const tensor<cpu> img = ramp(1, 2, 2);
  ssl::rng g(2);
  const aug::random_apply r{0.3f, add_const{1.0f}};
  int applied = 0;
  for (int i = 0; i < 1000; ++i) applied += r(img, g)[0] != img[0];
  CHECK(applied == Approx(300).margin(50));
  CHECK(aug::random_apply{0.0f, add_const{}}(img, g)[1] == img[1]);
  CHECK(aug::random_apply{1.0f, add_const{}}(img, g)[1] == img[1] + 1.0f);
  CHECK_THROWS_AS((aug::random_apply{1.5f, add_const{}}(img, g)), ssl::value_error);
}

TEST_CASE("multi_view gives independent views; same seed, same views") {
  const tensor<cpu> img = ramp(3, 20, 20);
  const auto policy = aug::multi_view{4, aug::compose{aug::random_resized_crop{8, 8}, aug::horizontal_flip{}}};
  ssl::rng g1(5), g2(5);
  const auto v1 = policy(img, g1), v2 = policy(img, g2);
  REQUIRE(v1.size() == 4);
  for (size_t i = 0; i < 4; ++i) {
    CHECK(v1[i].shape() == ssl::shape{3, 8, 8});
    CHECK(ssl_test::rel_error(v1[i], v2[i]) == 0.0);
  }
  CHECK(ssl_test::rel_error(v1[0], v1[1]) > 0.0);
  CHECK_THROWS_AS((aug::multi_view{0, aug::sobel{}}(img, g1)), ssl::value_error);
}

TEST_CASE("asymmetric_views and multi_crop order and size their views") {
  const tensor<cpu> img = ramp(3, 32, 32);
  ssl::rng g(8);
  const auto views = aug::asymmetric_views{add_const{1.0f}, add_const{2.0f}}(img, g);
  REQUIRE(views.size() == 2);
  CHECK(views[0][0] == Approx(img[0] + 1.0f));
  CHECK(views[1][0] == Approx(img[0] + 2.0f));
  const aug::multi_crop crops{aug::random_resized_crop{16, 16}, 2, aug::random_resized_crop{6, 6}, 5};
  const auto v = crops(img, g);
  REQUIRE(v.size() == 7);
  for (size_t i = 0; i < 7; ++i) CHECK(v[i].shape() == (i < 2 ? ssl::shape{3, 16, 16} : ssl::shape{3, 6, 6}));
}

TEST_CASE("the presets produce the papers' view counts, sizes and statistics") {
  const tensor<cpu> rgb = ramp(3, 40, 40), grey = ramp(1, 28, 28);
  ssl::rng g(21);
  for (const auto& v : aug::simclr_views(32)(rgb, g)) CHECK(v.shape() == ssl::shape{3, 32, 32});
  CHECK(aug::mocov2_views(24)(rgb, g).size() == 2);
  CHECK(aug::byol_views(24)(rgb, g).size() == 2);
  const auto dino = aug::dino_views(28, 12, 4, aug::fashion_mnist_normalize())(grey, g);
  REQUIRE(dino.size() == 6);
  CHECK(dino[1].shape() == ssl::shape{1, 28, 28});
  CHECK(dino[5].shape() == ssl::shape{1, 12, 12});
  CHECK(aug::mae_views(16)(rgb, g).size() == 1);
  // BYOL: the first view always blurs, the second solarizes with p 0.2
  const auto byol = aug::byol_views(24);
  CHECK(byol.get<0>().get<4>().p == 1.0f);
  CHECK(byol.get<1>().get<4>().p == Approx(0.1f));
  CHECK(byol.get<1>().get<5>().p == Approx(0.2f));
  CHECK(byol.get<0>().get<5>().p == 0.0f);
  // ImageNet normalisation on a one-channel image: a clear error
  CHECK_THROWS_AS(aug::simclr_views(28)(grey, g), ssl::shape_error);
}

TEST_CASE("fashion_mnist_simclr follows WORKLOADS.md Q3") {
  tensor<cpu> img(ssl::shape{1, 28, 28}, 0.0f);
  ssl::rng g(13);
  const auto policy = aug::fashion_mnist_simclr();
  // an all-zero image: crop and jitter keep zeros, so every pixel normalises to -0.2860 / 0.3530
  for (const auto& v : policy(img, g)) {
    REQUIRE(v.shape() == ssl::shape{1, 28, 28});
    for (int64_t i = 0; i < v.numel(); ++i) REQUIRE(v[i] == Approx(-0.2860f / 0.3530f));
  }
  // the parts carry Q3's settings
  const auto& view = policy.augmentation;
  CHECK(view.get<0>().scale_lo == Approx(0.3f));
  CHECK(view.get<2>().p == Approx(0.8f));
  CHECK(view.get<2>().inner.brightness_lo == Approx(0.6f));
  CHECK(view.get<2>().inner.contrast_hi == Approx(1.4f));
  // the mean of many views of a constant 0.5 image: jitter is mean-preserving up to brightness
  img.fill(0.5f);
  double sum = 0;
  int n = 0;
  for (int i = 0; i < 200; ++i)
    for (const auto& v : policy(img, g)) {
      sum += v[14 * 28 + 14];
      ++n;
    }
  CHECK(sum / n * 0.3530 + 0.2860 == Approx(0.5).margin(0.03));
}
