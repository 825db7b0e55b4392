// Fashion-MNIST from Debian's dataset-fashion-mnist (gzip IDX files), checked against counts and
// checksums computed independently by scripts/fixtures/data.py with Python's gzip module.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <ssl/data/mnist.hpp>
#include <support/fixtures.hpp>

namespace {
constexpr int64_t checksum_mod = 999999937;

// sum_i byte_i * (i mod 65521 + 1) mod 999999937 over bytes = round(255 * x)
int64_t weighted_checksum(const float* x, int64_t n) {
  int64_t sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t byte = std::lround(x[i] * 255.0f);
    sum = (sum + byte * (i % 65521 + 1)) % checksum_mod;
  }
  return sum;
}
int64_t weighted_checksum(const std::vector<int>& v) {
  int64_t sum = 0;
  for (size_t i = 0; i < v.size(); ++i) sum = (sum + int64_t(v[i]) * int64_t(i % 65521 + 1)) % checksum_mod;
  return sum;
}
int64_t number(const nlohmann::json& j, const std::string& name, size_t k = 0) {
  return std::llround(j.at(name).at("data").at(k).get<double>());
}

void check_split(ssl::data::split s, const std::string& tag, int64_t n, int per_class) {
  const std::string dir = ssl::data::fashion_mnist_dir();
  if (!std::filesystem::is_directory(dir)) {
    WARN("Fashion-MNIST not installed at " << dir << " (apt install dataset-fashion-mnist): test skipped");
    return;
  }
  const ssl_test::fixture fx("data/fashion_mnist.json");
  const auto& j = fx.json();
  const auto d = ssl::data::load_fashion_mnist(s);
  REQUIRE(d.size() == n);
  REQUIRE(number(j, tag + "_count") == n);
  CHECK(d.images().shape() == ssl::shape{n, 1, 28, 28});
  CHECK(d.num_classes() == 10);

  std::vector<int64_t> counts(10, 0);
  for (int l : d.labels()) {
    REQUIRE((l >= 0 && l < 10));
    ++counts[size_t(l)];
  }
  for (size_t c = 0; c < 10; ++c) {
    CHECK(counts[c] == per_class);
    CHECK(counts[c] == number(j, tag + "_class_counts", c));
  }
  for (size_t k = 0; k < 32; ++k) CHECK(d.label(int64_t(k)) == number(j, tag + "_first_labels", k));
  for (size_t k = 0; k < 8; ++k) {
    const auto im = d.image(int64_t(k));
    int64_t sum = 0;
    for (int64_t p = 0; p < im.numel(); ++p) sum += std::lround(im[p] * 255.0f);
    CHECK(sum == number(j, tag + "_first_image_sums", k));
  }
  CHECK(weighted_checksum(d.images().data(), d.images().numel()) == number(j, tag + "_pixel_checksum"));
  CHECK(weighted_checksum(d.labels()) == number(j, tag + "_label_checksum"));
  double mean = 0;
  for (int64_t p = 0; p < d.images().numel(); ++p) mean += d.images()[p];
  mean /= double(d.images().numel());
  CHECK(std::abs(mean - j.at(tag + "_mean").at("data").at(0).get<double>()) <= 1e-6);
}
}  // namespace

TEST_CASE("Fashion-MNIST train: 60000 images, 6000 per class, pixel checksum") {
  check_split(ssl::data::split::train, "train", 60000, 6000);
}

TEST_CASE("Fashion-MNIST test: 10000 images, 1000 per class, pixel checksum") {
  check_split(ssl::data::split::test, "test", 10000, 1000);
}
