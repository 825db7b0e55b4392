#include <catch2/catch.hpp>
#include <ssl/augment.hpp>
#include <ssl/encoders/mlp.hpp>
#include <ssl/eval/view_alignment.hpp>

namespace {

// (N, 1, 8, 8) images in [0, 1].
ssl::tensor<ssl::cpu> images(int64_t n, uint64_t seed) {
  ssl::rng g(seed);
  ssl::tensor<ssl::cpu> t(ssl::shape{n, 1, 8, 8});
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = g.uniform();
  return t;
}

// Two views: the image itself and the image plus noise of the given scale (0: two copies).
struct noisy_pair {
  float scale = 0.1f;
  std::vector<ssl::tensor<ssl::cpu>> operator()(const ssl::tensor<ssl::cpu>& img, ssl::rng& g) const {
    ssl::tensor<ssl::cpu> b = img;
    for (int64_t i = 0; i < b.numel(); ++i) b[i] += scale * g.normal();
    return {img, b};
  }
};
static_assert(ssl::ViewPolicy<noisy_pair>);

ssl::mlp_encoder<> encoder() { return ssl::mlp_encoder<>(64, {16}, 7); }

}  // namespace

TEST_CASE("view_alignment_uniformity: the metrics of the encoder's features of the drawn view pairs") {
  const auto x = images(40, 1);
  const auto enc = encoder();
  const noisy_pair policy{0.2f};
  const auto r = ssl::eval::view_alignment_uniformity(enc, x, policy, 30, 9, /*batch=*/7);
  const auto p = ssl::eval::draw_view_pairs(x, policy, 30, 9);
  const auto ref = ssl::eval::alignment_uniformity(enc.infer(p.x), enc.infer(p.y));
  CHECK(r.alignment == Approx(ref.alignment).epsilon(1e-6));
  CHECK(r.uniformity_x == Approx(ref.uniformity_x).epsilon(1e-6));
  CHECK(r.uniformity == Approx(ref.uniformity).epsilon(1e-6));
  CHECK(r.alignment > 0.0);
  // identical views: alignment 0, uniformity that of the un-augmented images' features
  const auto same = ssl::eval::view_alignment_uniformity(enc, x, noisy_pair{0.0f}, 40, 9);
  CHECK(same.alignment == Approx(0.0).margin(1e-12));
  CHECK(same.uniformity == Approx(ssl::eval::uniformity(enc.infer(x))).epsilon(1e-6));
}

TEST_CASE("draw_view_pairs: image i's views come from rng(seed).fork(i), the same for every call") {
  const auto x = images(10, 2);
  const noisy_pair policy;
  const auto a = ssl::eval::draw_view_pairs(x, policy, 6, 3), b = ssl::eval::draw_view_pairs(x, policy, 6, 3);
  const auto c = ssl::eval::draw_view_pairs(x, policy, 6, 4);
  REQUIRE(a.x.shape() == ssl::shape{6, 1, 8, 8});
  CHECK(a.y.vec() == b.y.vec());
  CHECK(a.y.vec() != c.y.vec());
  ssl::tensor<ssl::cpu> img(ssl::shape{1, 8, 8});
  std::copy_n(x.data() + 4 * 64, 64, img.data());
  ssl::rng g = ssl::rng(3).fork(4);
  const auto v = policy(img, g);
  for (int64_t k = 0; k < 64; ++k) {
    CHECK(a.x[4 * 64 + k] == v[0][k]);
    CHECK(a.y[4 * 64 + k] == v[1][k]);
  }
  // a real preset (affine crop, flip, brightness / contrast, normalise) works as a policy
  const auto q = ssl::eval::draw_view_pairs(x, ssl::augment::fashion_mnist_simclr(8), 6, 3);
  CHECK(q.x.shape() == ssl::shape{6, 1, 8, 8});
  CHECK(q.x.vec() != q.y.vec());
}

TEST_CASE("draw_view_pairs rejects bad counts, one-view policies and views of different shapes") {
  const auto x = images(5, 3);
  CHECK_THROWS_AS(ssl::eval::draw_view_pairs(x, noisy_pair{}, 6, 0), ssl::value_error);
  CHECK_THROWS_AS(ssl::eval::draw_view_pairs(x, noisy_pair{}, 1, 0), ssl::value_error);
  auto one_view = [](const ssl::tensor<ssl::cpu>& img, ssl::rng&) { return std::vector<ssl::tensor<ssl::cpu>>{img}; };
  CHECK_THROWS_WITH(ssl::eval::draw_view_pairs(x, one_view, 3, 0), Catch::Contains("at least 2 views"));
  auto mixed = [](const ssl::tensor<ssl::cpu>& img, ssl::rng&) {
    return std::vector<ssl::tensor<ssl::cpu>>{img, ssl::tensor<ssl::cpu>(ssl::shape{1, 4, 4})};
  };
  CHECK_THROWS_AS(ssl::eval::draw_view_pairs(x, mixed, 3, 0), ssl::shape_error);
  CHECK_THROWS_AS(ssl::eval::draw_view_pairs(ssl::tensor<ssl::cpu>(ssl::shape{5, 64}), noisy_pair{}, 3, 0),
                  ssl::shape_error);
}
