#include <catch2/catch.hpp>
#include <ssl/core/rng.hpp>
#include <ssl/data/mnist.hpp>

#include "error_message.hpp"
#include "temp_dir.hpp"

using ssl::data::byte_vector;
using ssl_test::message_of;

namespace {
// IDX bytes: 00 00 08 ndims, big-endian sizes, then the payload.
byte_vector idx_bytes(const std::vector<uint32_t>& dims, const byte_vector& payload) {
  byte_vector b = {0, 0, 8, uint8_t(dims.size())};
  for (uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(uint8_t(d >> s));
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}
byte_vector random_payload(size_t n, uint64_t seed) {
  ssl::rng g(seed);
  byte_vector v(n);
  for (auto& x : v) x = uint8_t(g.below(256));
  return v;
}
}  // namespace

TEST_CASE("IDX images and labels load, plain and gzip-compressed, in row-major order") {
  ssl_test::temp_dir dir("idx");
  const uint32_t N = 7, H = 3, W = 5;
  const auto px = random_payload(N * H * W, 1);
  const byte_vector labels = {3, 1, 4, 1, 5, 9, 2};
  ssl::data::write_bytes(dir / "train-images-idx3-ubyte", idx_bytes({N, H, W}, px));
  ssl::data::write_bytes(dir / "train-labels-idx1-ubyte.gz", ssl::data::gzip(idx_bytes({N}, labels)));

  const auto d = ssl::data::load_mnist(dir.str(), ssl::data::split::train);
  REQUIRE(d.size() == N);
  CHECK(d.images().shape() == ssl::shape{N, 1, H, W});
  CHECK(d.num_classes() == 10);
  for (uint32_t n = 0; n < N; ++n) {
    CHECK(d.label(n) == labels[n]);
    const auto im = d.image(n);
    REQUIRE(im.shape() == ssl::shape{1, H, W});
    for (uint32_t y = 0; y < H; ++y)
      for (uint32_t x = 0; x < W; ++x) CHECK(im.at(0, y, x) == float(px[(n * H + y) * W + x]) / 255.0f);
  }
  // images only: unlabelled
  const auto u = ssl::data::load_idx(dir / "train-images-idx3-ubyte");
  CHECK(!u.has_labels());
  CHECK(u.label(0) == ssl::data::no_label);
}

TEST_CASE("bad IDX files give a format_error naming the file and the fault") {
  ssl_test::temp_dir dir("idx_bad");
  const auto good = idx_bytes({4, 2, 2}, random_payload(16, 2));
  auto expect = [&](const byte_vector& bytes, const std::string& fault) {
    const std::string path = dir / "bad-idx3-ubyte";
    ssl::data::write_bytes(path, bytes);
    const auto msg = message_of<ssl::format_error>([&] { ssl::data::read_idx_images(path); });
    CHECK_THAT(msg, Catch::Contains(path) && Catch::Contains(fault));
  };
  auto magic = good;
  magic[0] = 0x1f;
  expect(magic, "wrong magic");
  auto type = good;
  type[2] = 0x0D;
  expect(type, "element type 0xd");
  expect(byte_vector(good.begin(), good.end() - 3), "truncated");
  auto longer = good;
  longer.push_back(0);
  expect(longer, "trailing data");
  expect(byte_vector(good.begin(), good.begin() + 9), "truncated header");
  expect(idx_bytes({16}, random_payload(16, 3)), "expected an image file with 3 dimensions");
  // a truncated .gz is caught by the gzip layer, still naming the file
  const auto gz = ssl::data::gzip(good);
  expect(byte_vector(gz.begin(), gz.end() - 5), "gzip");
}

TEST_CASE("image and label counts must agree; a missing folder names the path and the package") {
  ssl_test::temp_dir dir("idx_count");
  ssl::data::write_bytes(dir / "t10k-images-idx3-ubyte", idx_bytes({3, 2, 2}, random_payload(12, 4)));
  ssl::data::write_bytes(dir / "t10k-labels-idx1-ubyte", idx_bytes({2}, {0, 1}));
  CHECK_THAT(message_of<ssl::format_error>([&] { ssl::data::load_mnist(dir.str(), ssl::data::split::test); }),
             Catch::Contains("2 labels") && Catch::Contains("3 images"));

  const std::string missing = dir / "nowhere";
  const auto msg = message_of<ssl::io_error>([&] { ssl::data::load_fashion_mnist(ssl::data::split::train, missing); });
  CHECK_THAT(msg, Catch::Contains(missing) && Catch::Contains("dataset-fashion-mnist"));
}
