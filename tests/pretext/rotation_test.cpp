#include <catch2/catch.hpp>
#include <ssl/pretext/rotation.hpp>

#include "support/fixtures.hpp"

using Catch::Matchers::Contains;

TEST_CASE("rotate90 matches torch.rot90 on a non-square image") {
  ssl_test::fixture fx("pretext/rotation.json");
  const auto img = fx.tensor("image");
  for (int k = 0; k < 4; ++k) {
    const auto want = fx.tensor("rot" + std::to_string(k));
    const auto got = ssl::pretext::rotate90(img, k);
    INFO("k = " << k);
    REQUIRE(got.shape() == want.shape());
    CHECK(ssl_test::rel_error(got, want) == 0.0);
  }
  // k is taken mod 4
  CHECK(ssl_test::rel_error(ssl::pretext::rotate90(img, -1), fx.tensor("rot3")) == 0.0);
  CHECK(ssl_test::rel_error(ssl::pretext::rotate90(img, 6), fx.tensor("rot2")) == 0.0);
}

TEST_CASE("rotation_batch stacks the four rotations of each image with labels k") {
  ssl_test::fixture fx("pretext/rotation.json");
  const auto batch = fx.tensor("batch");  // (2, 3, 4, 4)
  const auto r = ssl::pretext::rotation_batch(batch);
  REQUIRE(r.images.shape() == ssl::shape{8, 3, 4, 4});
  REQUIRE(r.labels.size() == 8);
  const int64_t per = 3 * 4 * 4;
  for (int k = 0; k < 4; ++k) {
    const auto want = fx.tensor("batch_rot" + std::to_string(k));  // (2, 3, 4, 4)
    for (int64_t n = 0; n < 2; ++n) {
      CHECK(r.labels[size_t(4 * n + k)] == k);
      double err = 0;
      for (int64_t j = 0; j < per; ++j)
        err = std::max(err, double(std::abs(r.images[(4 * n + k) * per + j] - want[n * per + j])));
      CHECK(err == 0.0);
    }
  }
}

TEST_CASE("rotation rejects bad shapes") {
  CHECK_THROWS_AS(ssl::pretext::rotate90(ssl::tensor<ssl::cpu>({4, 4}), 1), ssl::shape_error);
  CHECK_THROWS_WITH(ssl::pretext::rotation_batch(ssl::tensor<ssl::cpu>({1, 3, 4, 5})),
                    Contains("must be square") && Contains("H = 4, W = 5"));
}
