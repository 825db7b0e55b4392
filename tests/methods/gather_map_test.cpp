// The gather maps the pretext methods use on a device backend: a host transform that only moves
// elements (rotation_batch, jigsaw_batch), run on a batch of element indices, applied to a batch
// by gather_per_image, is that transform of the batch, exactly (the CPU branch here; the device
// branch is one gather kernel over the same map, tests/cuda/method_pretext_test.cu).
#include "method_support.hpp"

using namespace method_test;
namespace md = ssl::methods_detail;

TEST_CASE("element_index_images: every image holds 0, 1, ..., E - 1") {
  const auto t = md::element_index_images(ssl::shape{3, 2, 4, 5});
  REQUIRE(t.shape() == ssl::shape{3, 2, 4, 5});
  for (int64_t n = 0; n < 3; ++n)
    for (int64_t j = 0; j < 40; ++j) CHECK(t[n * 40 + j] == float(j));
  CHECK_THROWS_AS(md::element_index_images(ssl::shape{0, 3}), ssl::shape_error);
  CHECK_THROWS_AS(md::element_index_images(ssl::shape{1, (int64_t(1) << 24) + 1}), ssl::shape_error);
}

TEST_CASE("gather_per_image: the map of rotation_batch rotates any batch like rotation_batch") {
  const auto x = random_batch(5, 3, 7, 7, 61);
  const auto map = ssl::pretext::rotation_batch(md::element_index_images(x.shape()));
  const auto ref = ssl::pretext::rotation_batch(x);
  const auto y = md::gather_per_image(x, map.images);
  CHECK(y.shape() == ref.images.shape());
  CHECK(max_diff(y, ref.images) == 0.0);
  CHECK(map.labels == ref.labels);
}

TEST_CASE("gather_per_image: the map of jigsaw_batch cuts the same tiles with the same labels") {
  const auto x = random_batch(6, 2, 12, 15, 62);
  const ssl::pretext::permutation_set perms(10, 3);
  const auto map = ssl::pretext::jigsaw_batch(md::element_index_images(x.shape()), perms, ssl::rng(4), 3);
  const auto ref = ssl::pretext::jigsaw_batch(x, perms, ssl::rng(4), 3);
  CHECK(map.labels == ref.labels);
  const auto y = md::gather_per_image(x, map.tiles);
  CHECK(y.shape() == ref.tiles.shape());
  CHECK(max_diff(y, ref.tiles) == 0.0);
}

TEST_CASE("gather_per_image: rejects a map that does not split into one block per image, or bad indices") {
  const auto x = random_batch(2, 1, 3, 3, 63);
  CHECK_THROWS_AS(md::gather_per_image(x, ssl::tensor<ssl::cpu>(ssl::shape{3}, 0.0f)), ssl::shape_error);
  CHECK_THROWS_AS(md::gather_per_image(x, ssl::tensor<ssl::cpu>(ssl::shape{2, 2}, 9.0f)), ssl::value_error);
  CHECK_THROWS_AS(md::gather_per_image(x, ssl::tensor<ssl::cpu>(ssl::shape{2, 2}, -1.0f)), ssl::value_error);
}
