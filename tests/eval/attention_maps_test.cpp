#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <ssl/encoders/vit.hpp>
#include <ssl/eval/attention_maps.hpp>

namespace {
ssl::tensor<ssl::cpu> random_images(int64_t N, int64_t H, uint64_t seed) {
  ssl::tensor<ssl::cpu> t(ssl::shape{N, 1, H, H});
  ssl::rng g(seed);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = g.uniform();
  return t;
}
}  // namespace

TEST_CASE("cls_attention_maps: the last block's [CLS] row over the patches, on the patch grid") {
  ssl::vit<> v({.image_size = 12, .patch = 4, .in_channels = 1, .dim = 12, .depth = 2, .heads = 3}, ssl::rng(1));
  const auto x = random_images(2, 12, 3);
  const auto maps = ssl::eval::cls_attention_maps(v, x);
  REQUIRE(maps.shape() == ssl::shape{2, 3, 3, 3});
  const auto probs = v.attention(x, -1);  // (N, H, T, T)
  REQUIRE(probs.shape() == ssl::shape{2, 3, 10, 10});
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t h = 0; h < 3; ++h) {
      double s = probs.at(n, h, int64_t(0), int64_t(0));
      for (int64_t p = 0; p < 9; ++p) {
        CHECK(maps.at(n, h, p / 3, p % 3) == probs.at(n, h, int64_t(0), 1 + p));
        s += maps.at(n, h, p / 3, p % 3);
      }
      CHECK(s == Approx(1.0).epsilon(1e-5));  // with the [CLS] self-attention, a softmax row
    }
}

TEST_CASE("upsample_maps: nearest repeats, bilinear follows F.interpolate(align_corners=False)") {
  const auto m = ssl::tensor<ssl::cpu>::from(ssl::shape{1, 1, 2, 2}, {0.0f, 4.0f, 8.0f, 12.0f});
  const auto n = ssl::eval::upsample_maps(m, 4, 4, ssl::eval::upsample_mode::nearest);
  CHECK(n.at(0, 0, 0, 1) == 0.0f);
  CHECK(n.at(0, 0, 1, 2) == 4.0f);
  CHECK(n.at(0, 0, 3, 0) == 8.0f);
  CHECK(n.at(0, 0, 2, 3) == 12.0f);
  const auto b = ssl::eval::upsample_maps(m, 4, 4, ssl::eval::upsample_mode::bilinear);
  // 1-D weights for 2 -> 4: a, 0.75 a + 0.25 b, 0.25 a + 0.75 b, b
  const float row0[4] = {0.0f, 1.0f, 3.0f, 4.0f};
  for (int x = 0; x < 4; ++x) CHECK(b.at(0, 0, 0, x) == Approx(row0[x]));
  CHECK(b.at(0, 0, 1, 1) == Approx(0.75 * 1.0 + 0.25 * 9.0));
  CHECK(b.at(0, 0, 3, 3) == Approx(12.0));
}

TEST_CASE("keep_attention_mass keeps the largest entries holding the requested share") {
  const auto m = ssl::tensor<ssl::cpu>::from(ssl::shape{1, 2, 1, 4}, {0.5f, 0.3f, 0.1f, 0.1f, 0.1f, 0.2f, 0.3f, 0.4f});
  const auto k = ssl::eval::keep_attention_mass(m, 0.6f);
  const std::vector<float> want{1, 1, 0, 0, 0, 0, 1, 1};  // 0.5 + 0.3 >= 0.6; 0.4 + 0.3 >= 0.6
  CHECK(k.to_vector() == want);
  const auto k2 = ssl::eval::keep_attention_mass(m, 0.45f);
  CHECK(k2.to_vector() == std::vector<float>{1, 0, 0, 0, 0, 0, 1, 1});
  CHECK_THROWS_AS(ssl::eval::keep_attention_mass(m, 0.0f), ssl::value_error);
}

TEST_CASE("attention_figure lays out image, head overlays and thresholded maps; the PNG round-trips") {
  const auto imgs = random_images(2, 8, 5);
  ssl::tensor<ssl::cpu> maps(ssl::shape{2, 3, 2, 2});
  ssl::rng g(6);
  for (int64_t i = 0; i < maps.numel(); ++i) maps[i] = g.uniform();
  const auto fig = ssl::eval::attention_figure(imgs, maps, {.scale = 2, .padding = 2});
  CHECK(fig.shape() == ssl::shape{3, 2 * 18 + 2, 7 * 18 + 2});
  // the first cell is the magnified grey image
  CHECK(fig.at(0, 2, 2) == Approx(imgs.at(0, 0, 0, 0)));
  CHECK(fig.at(1, 2 + 3, 2 + 5) == Approx(imgs.at(0, 0, 1, 2)));
  const auto path = (std::filesystem::temp_directory_path() / "ssl_attention_test.png").string();
  ssl::eval::write_attention_png(path, imgs, maps, {.scale = 2});
  const auto back = ssl::io::read_image(path);
  CHECK(back.shape() == fig.shape());
  std::remove(path.c_str());
  ssl::tensor<ssl::cpu> wrong(ssl::shape{3, 3, 2, 2}, 0.1f);
  try {
    ssl::eval::attention_figure(imgs, wrong);
    FAIL("expected shape_error");
  } catch (const ssl::shape_error& e) {
    CHECK(std::string(e.what()).find("2 images but maps for 3") != std::string::npos);
  }
}
