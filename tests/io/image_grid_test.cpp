#include <catch2/catch.hpp>
#include <ssl/io/image_grid.hpp>
#include <support/fixtures.hpp>

TEST_CASE("make_grid matches torchvision.utils.make_grid") {
  const ssl_test::fixture fx("io/image_grid.json");
  const auto all = fx.tensor("images");  // (5, 3, 4, 5)
  std::vector<ssl::tensor<ssl::cpu>> images;
  for (int64_t k = 0; k < all.dim(0); ++k) {
    ssl::tensor<ssl::cpu> im(ssl::shape{3, 4, 5});
    std::copy_n(all.data() + k * 60, 60, im.data());
    images.push_back(im);
  }
  const auto grid = ssl::io::make_grid(images, 2, 1, 0.25f);
  CHECK(ssl_test::rel_error(grid, fx.tensor("grid_nrow2_pad1")) <= 1e-6);
  images.resize(3);
  CHECK(ssl_test::rel_error(ssl::io::make_grid(images), fx.tensor("grid_nrow8_pad2")) <= 1e-6);
}

TEST_CASE("make_grid broadcasts grey images and rejects mismatched sizes") {
  std::vector<ssl::tensor<ssl::cpu>> images = {ssl::tensor<ssl::cpu>(ssl::shape{1, 2, 2}, 0.5f),
                                               ssl::tensor<ssl::cpu>(ssl::shape{3, 2, 2}, 1.0f)};
  const auto g = ssl::io::make_grid(images, 8, 1);
  CHECK(g.shape() == ssl::shape{3, 4, 7});
  CHECK(g.at(2, 1, 1) == 0.5f);
  CHECK(g.at(2, 1, 4) == 1.0f);
  CHECK(g.at(0, 0, 0) == 0.0f);
  images.push_back(ssl::tensor<ssl::cpu>(ssl::shape{3, 2, 3}, 0.0f));
  CHECK_THROWS_AS(ssl::io::make_grid(images), ssl::shape_error);
  CHECK_THROWS_AS(ssl::io::make_grid({}), ssl::value_error);
}
