#include <catch2/catch.hpp>
#include <cmath>
#include <ssl/core/rng.hpp>
#include <ssl/io/image.hpp>

#include "../data/error_message.hpp"
#include "../data/temp_dir.hpp"

using ssl::cpu;
using ssl::tensor;

namespace {
tensor<cpu> random_quantized(int64_t c, int64_t h, int64_t w, uint64_t seed) {
  ssl::rng g(seed);
  tensor<cpu> t(ssl::shape{c, h, w});
  for (int64_t k = 0; k < t.numel(); ++k) t[k] = float(g.below(256)) / 255.0f;
  return t;
}
}  // namespace

TEST_CASE("PNG round-trips 1 to 4 channels exactly (values on the 1/255 grid)") {
  ssl_test::temp_dir dir("png");
  for (int64_t c = 1; c <= 4; ++c) {
    const auto img = random_quantized(c, 7, 5, uint64_t(c));
    const std::string path = dir / ("img" + std::to_string(c) + ".png");
    ssl::io::write_png(path, img);
    const auto back = ssl::io::read_image(path);
    REQUIRE(back.shape() == img.shape());
    CHECK(back.to_vector() == img.to_vector());
  }
  // channel conversion on read: RGB -> grey has one channel in [0, 1]
  const auto grey = ssl::io::read_image(dir / "img3.png", 1);
  CHECK(grey.shape() == ssl::shape{1, 7, 5});
}

TEST_CASE("writing clamps to [0, 1] and rounds to the nearest level") {
  tensor<cpu> t = tensor<cpu>::from(ssl::shape{1, 1, 4}, {-0.5f, 1.7f, 0.5f, 100.4f / 255.0f});
  const auto back = ssl::io::decode_image(ssl::io::encode_png(t));
  CHECK(back.to_vector() == std::vector<float>{0.0f, 1.0f, 128.0f / 255.0f, 100.0f / 255.0f});
}

TEST_CASE("JPEG encodes and decodes close to the original") {
  tensor<cpu> t(ssl::shape{3, 16, 16});
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t y = 0; y < 16; ++y)
      for (int64_t x = 0; x < 16; ++x) t.at(c, y, x) = float(c + 1) * float(x + y) / 100.0f;
  const auto back = ssl::io::decode_image(ssl::io::encode_jpeg(t, 95), 0, "mem.jpg");
  REQUIRE(back.shape() == t.shape());
  double err = 0;
  for (int64_t k = 0; k < t.numel(); ++k) err = std::max(err, double(std::abs(back[k] - t[k])));
  CHECK(err < 0.05);
}

TEST_CASE("unreadable images give typed errors naming the file") {
  ssl_test::temp_dir dir("png_bad");
  CHECK_THAT(ssl_test::message_of<ssl::io_error>([&] { ssl::io::read_image(dir / "none.png"); }),
             Catch::Contains("none.png"));
  auto png = ssl::io::encode_png(random_quantized(3, 8, 8, 3));
  ssl::data::write_bytes(dir / "cut.png", std::span(png).first(png.size() / 2));
  CHECK_THAT(ssl_test::message_of<ssl::format_error>([&] { ssl::io::read_image(dir / "cut.png"); }),
             Catch::Contains("cut.png"));
  png[1] = 'Q';  // wrong magic
  ssl::data::write_bytes(dir / "magic.png", png);
  CHECK_THAT(ssl_test::message_of<ssl::format_error>([&] { ssl::io::read_image(dir / "magic.png"); }),
             Catch::Contains("magic.png") && Catch::Contains("not a readable image"));
  CHECK_THROWS_AS(ssl::io::encode_png(tensor<cpu>(ssl::shape{5, 2, 2}, 0.0f)), ssl::shape_error);
  CHECK_THROWS_AS(ssl::io::encode_png(tensor<cpu>(ssl::shape{2, 2}, 0.0f)), ssl::shape_error);
}

TEST_CASE("a JPEG Huffman table with more than 256 codes is rejected before stb decodes it") {
  tensor<cpu> t(ssl::shape{3, 8, 8}, 0.5f);
  auto jpg = ssl::io::encode_jpeg(t);
  REQUIRE(ssl::io::decode_image(jpg).shape() == t.shape());
  size_t dht = 0;
  for (size_t i = 0; i + 1 < jpg.size(); ++i)
    if (jpg[i] == 0xFF && jpg[i + 1] == 0xC4) {
      dht = i;
      break;
    }
  REQUIRE(dht > 0);
  for (size_t k = 0; k < 16; ++k) jpg[dht + 5 + k] = 17;  // 16 x 17 = 272 codes
  CHECK_THAT(ssl_test::message_of<ssl::format_error>([&] { ssl::io::decode_image(jpg, 0, "huff.jpg"); }),
             Catch::Contains("huff.jpg") && Catch::Contains("272 codes"));
}
