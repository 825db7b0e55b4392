#include "method_support.hpp"

using namespace method_test;

namespace {
ssl::tensor<ssl::cpu> uniform_batch(int64_t B, int64_t C, int64_t H, int64_t W, uint64_t seed) {
  ssl::tensor<ssl::cpu> t(ssl::shape{B, C, H, W});
  ssl::rng g(seed);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = g.uniform();
  return t;
}
auto linear_head(int64_t in, int64_t out, uint64_t seed = 9) { return tiny_head(in, in, out, seed, 1); }
ssl::pretext::ab_quantizer four_bins() { return ssl::pretext::ab_quantizer({{0, 0}, {20, 0}, {0, 20}, {-20, -20}}, 10); }
}  // namespace

TEST_CASE("rotation: gradients match finite differences; the head must have 4 outputs") {
  ssl::rotation_method m(tiny_encoder(64), linear_head(16, 4));
  const std::vector<ssl::tensor<ssl::cpu>> views{random_batch(5, 1, 8, 8, 31)};
  auto res = check_step_gradients(m, [&] { return m.train_step(views).loss; }, 4);
  INFO(res.report());
  CHECK(res.ok());
  expect_shape_error_naming([] { ssl::rotation_method(tiny_encoder(64, 16), linear_head(12, 4)); }, {"16", "12"});
  expect_shape_error_naming([] { ssl::rotation_method(tiny_encoder(64, 16), linear_head(16, 5)); }, {"4", "5"});
}

TEST_CASE("rotation: a few steps lower the loss") {
  ssl::rotation_method m(tiny_encoder(64, 32), linear_head(32, 4));
  auto x = uniform_batch(16, 1, 8, 8, 32);  // images with a vertical ramp: the rotation is visible
  for (int64_t i = 0; i < x.numel(); ++i) x[i] += float((i / 8) % 8) / 4.0f;
  const std::vector<ssl::tensor<ssl::cpu>> views{x};
  auto [first, last] = train_a_little(m, [&] { return m.train_step(views).loss; }, 40, 0.05f);
  INFO(first << " -> " << last);
  CHECK(last < 0.6f * first);
}

TEST_CASE("jigsaw: gradients through the shared tile encoder match finite differences") {
  ssl::jigsaw_method m(tiny_encoder(9, 8), linear_head(72, 6), {.permutations = 6, .tile = 3, .seed = 2});
  const auto x = random_batch(4, 1, 12, 12, 33);
  const auto jb = ssl::pretext::jigsaw_batch(x, m.permutations(), ssl::rng(5), 3);
  CHECK(jb.tiles.shape() == ssl::shape{36, 1, 3, 3});
  auto res = check_step_gradients(m, [&] { return m.train_on(jb).loss; }, 4);
  INFO(res.report());
  CHECK(res.ok());
  // train_step draws new puzzles on each call (labels in [0, 6))
  const std::vector<ssl::tensor<ssl::cpu>> views{x};
  CHECK(std::isfinite(m.train_step(views).loss));
}

TEST_CASE("jigsaw: the head must see 9 tile features and give one logit per permutation") {
  expect_shape_error_naming([] { ssl::jigsaw_method(tiny_encoder(9, 8), linear_head(64, 6), {.permutations = 6}); },
                            {"72", "64"});
  expect_shape_error_naming([] { ssl::jigsaw_method(tiny_encoder(9, 8), linear_head(72, 5), {.permutations = 6}); },
                            {"6", "5"});
}

TEST_CASE("jigsaw: a few steps lower the loss on fixed puzzles") {
  ssl::jigsaw_method m(tiny_encoder(9, 16), linear_head(144, 6), {.permutations = 6, .tile = 3, .seed = 2});
  const auto jb = ssl::pretext::jigsaw_batch(uniform_batch(16, 1, 12, 12, 34), m.permutations(), ssl::rng(6), 3);
  auto [first, last] = train_a_little(m, [&] { return m.train_on(jb).loss; }, 40, 0.05f);
  INFO(first << " -> " << last);
  CHECK(last < 0.6f * first);
}

TEST_CASE("colorization: inputs are the normalised lightness, labels the bins of each cell's mean ab") {
  ssl::colorization_method m(tiny_encoder(64), linear_head(16, 16), {.grid = 2, .input_mean = 0.5f, .input_std = 0.25f},
                             four_bins());
  const auto rgb = uniform_batch(3, 3, 8, 8, 35);
  const auto b = m.prepare(rgb);
  REQUIRE(b.input.shape() == ssl::shape{3, 1, 8, 8});
  REQUIRE(b.labels.size() == 12);
  for (int64_t n = 0; n < 3; ++n) {
    ssl::tensor<ssl::cpu> img(ssl::shape{3, 8, 8});
    std::copy_n(rgb.data() + n * 192, 192, img.data());
    const auto lab = ssl::pretext::rgb_to_lab(img);
    for (int64_t p = 0; p < 64; p += 9) CHECK(b.input[n * 64 + p] == Approx((lab[p] / 100 - 0.5) / 0.25).margin(1e-4));
    for (int64_t c = 0; c < 4; ++c) {
      double a = 0, bb = 0;
      for (int64_t i = (c / 2) * 4; i < (c / 2) * 4 + 4; ++i)
        for (int64_t j = (c % 2) * 4; j < (c % 2) * 4 + 4; ++j) a += lab[64 + i * 8 + j], bb += lab[128 + i * 8 + j];
      CHECK(b.labels[size_t(n * 4 + c)] == m.quantizer().hard_encode(float(a / 16), float(bb / 16)));
    }
  }
}

TEST_CASE("colorization: gradients match finite differences; bad parts and inputs are rejected") {
  ssl::colorization_method m(tiny_encoder(64), linear_head(16, 16), {.grid = 2}, four_bins());
  const std::vector<ssl::tensor<ssl::cpu>> views{uniform_batch(5, 3, 8, 8, 36)};
  auto res = check_step_gradients(m, [&] { return m.train_step(views).loss; }, 4);
  INFO(res.report());
  CHECK(res.ok());
  expect_shape_error_naming([] { ssl::colorization_method(tiny_encoder(64), linear_head(16, 12), {.grid = 2}, four_bins()); },
                            {"16", "12"});
  expect_shape_error_naming([&] { m.prepare(uniform_batch(2, 1, 8, 8, 1)); }, {"(B, 3, H, W)", "(2, 1, 8, 8)"});
}

TEST_CASE("colorization: a few steps lower the loss") {
  ssl::colorization_method m(tiny_encoder(64, 32), linear_head(32, 16), {.grid = 2}, four_bins());
  const auto b = m.prepare(uniform_batch(16, 3, 8, 8, 37));
  auto [first, last] = train_a_little(m, [&] { return m.train_on(b).loss; }, 40, 0.05f);
  INFO(first << " -> " << last);
  CHECK(last < 0.8f * first);
}
