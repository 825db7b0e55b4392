// mixup_cutmix: soft targets, mixup pixels, the cutmix box and its lam, unmixed batches,
// reproducibility, the mixup / cutmix switch, bad input.
#include <catch2/catch.hpp>
#include <ssl/augment/mixup_cutmix.hpp>
#include <vector>

namespace aug = ssl::augment;
using ssl::tensor;
using ssl::cpu;

namespace {
// (B, C, H, W) standard normal values (all distinct in practice, so a moved pixel is visible)
tensor<cpu> random_batch(int64_t B, int64_t C, int64_t H, int64_t W, uint64_t seed) {
  ssl::rng g(seed);
  tensor<cpu> x(ssl::shape{B, C, H, W});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = g.normal();
  return x;
}
aug::mixup_cutmix make(int K, float mixup_alpha, float cutmix_alpha) {
  aug::mixup_cutmix m;
  m.num_classes = K;
  m.mixup_alpha = mixup_alpha;
  m.cutmix_alpha = cutmix_alpha;
  return m;
}
// Rows sum to 1; row i holds lam on y_i and 1 - lam on the partner's label, plus eps / K everywhere.
void check_targets(const tensor<cpu>& t, const std::vector<int64_t>& y, float lam, float eps) {
  const int64_t B = int64_t(y.size()), K = t.dim(1);
  REQUIRE(t.shape() == ssl::shape{B, K});
  const float off = eps / float(K), peak = 1.0f - eps;
  for (int64_t i = 0; i < B; ++i) {
    double sum = 0;
    for (int64_t k = 0; k < K; ++k) {
      float expect = off;
      if (k == y[size_t(i)]) expect += lam * peak;
      if (k == y[size_t(B - 1 - i)]) expect += (1.0f - lam) * peak;
      CHECK(t.at(i, k) == Approx(expect).margin(1e-6));
      sum += t.at(i, k);
    }
    CHECK(sum == Approx(1.0).margin(1e-5));
  }
}
}  // namespace

TEST_CASE("mixup mixes each image with the flipped batch's by lam, and its targets by lam") {
  const auto m = make(5, 0.8f, 0.0f);
  const tensor<cpu> x = random_batch(5, 2, 4, 3, 1);  // odd B: the middle row is its own partner
  const std::vector<int64_t> y{0, 3, 2, 3, 1};
  ssl::rng g(7);
  const auto r = m(x, y, g);
  CHECK(r.mixed);
  CHECK_FALSE(r.cutmix);
  CHECK(r.lam > 0.0f);
  CHECK(r.lam < 1.0f);
  REQUIRE(r.images.shape() == x.shape());
  const int64_t B = 5, n = x.numel() / B;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t k = 0; k < n; ++k)
      CHECK(r.images[b * n + k] == Approx(r.lam * x[b * n + k] + (1 - r.lam) * x[(B - 1 - b) * n + k]).margin(1e-6));
  check_targets(r.targets, y, r.lam, m.label_smoothing);
  // the middle row keeps its image and its (smoothed) one-hot target
  for (int64_t k = 0; k < n; ++k) CHECK(r.images[2 * n + k] == Approx(x[2 * n + k]).margin(1e-6));
  CHECK(r.targets.at(2, 2) == Approx(1.0f - m.label_smoothing + m.label_smoothing / 5).margin(1e-6));
}

TEST_CASE("cutmix takes exactly one box from the partner, and lam is its complement's area fraction") {
  const auto m = make(4, 0.0f, 1.0f);
  const int64_t B = 4, C = 3, H = 9, W = 7;
  const tensor<cpu> x = random_batch(B, C, H, W, 2);
  const std::vector<int64_t> y{0, 1, 2, 3};
  int boxes = 0;
  for (uint64_t seed = 0; seed < 30; ++seed) {
    INFO("seed " << seed);
    ssl::rng g(seed), g2(seed);
    const auto p = m.draw(x, g2);
    const auto r = m(x, y, g);
    REQUIRE(r.mixed);
    REQUIRE(r.cutmix);
    CHECK(r.lam == p.lam);
    check_targets(r.targets, y, r.lam, m.label_smoothing);
    for (int64_t b = 0; b < B; ++b) {
      // changed pixels (any channel): their bounding box, count, and origin
      int64_t changed = 0, y0 = H, y1 = -1, x0 = W, x1 = -1;
      for (int64_t yy = 0; yy < H; ++yy)
        for (int64_t xx = 0; xx < W; ++xx) {
          bool moved = false;
          for (int64_t c = 0; c < C; ++c) {
            const float v = r.images.at(b, c, yy, xx);
            if (v == x.at(b, c, yy, xx)) continue;
            moved = true;
            CHECK(v == x.at(B - 1 - b, c, yy, xx));
          }
          if (!moved) continue;
          ++changed;
          y0 = std::min(y0, yy), y1 = std::max(y1, yy), x0 = std::min(x0, xx), x1 = std::max(x1, xx);
        }
      // the changed pixels fill their bounding box, which is the drawn box
      if (changed > 0) CHECK(changed == (y1 - y0 + 1) * (x1 - x0 + 1));
      CHECK(double(changed) == Approx((1.0 - r.lam) * H * W).margin(1e-3));
      CHECK(changed == int64_t(p.height) * p.width);
      if (changed > 0) {
        CHECK(y0 == p.top);
        CHECK(x0 == p.left);
      }
    }
    boxes += p.height * p.width > 0;
  }
  CHECK(boxes >= 20);
  // a given box: the pixels inside come from the partner, all others stay
  aug::mixup_cutmix::params p;
  p.mixed = p.cutmix = true;
  p.top = 2, p.left = 1, p.height = 3, p.width = 4;
  p.lam = 1.0f - 12.0f / 63.0f;
  const auto r = m.apply(x, y, p);
  for (int64_t c = 0; c < C; ++c)
    for (int64_t yy = 0; yy < H; ++yy)
      for (int64_t xx = 0; xx < W; ++xx) {
        const bool in = yy >= 2 && yy < 5 && xx >= 1 && xx < 5;
        CHECK(r.images.at(0, c, yy, xx) == x.at(in ? 3 : 0, c, yy, xx));
      }
}

TEST_CASE("mixup_cutmix leaves unmixed batches alone, is reproducible, and switches as told") {
  const tensor<cpu> x = random_batch(4, 1, 5, 5, 3);
  const std::vector<int64_t> y{2, 0, 1, 2};
  auto unmixed = [&](const aug::mixup_cutmix& m) {
    ssl::rng g(5);
    const auto r = m(x, y, g);
    CHECK_FALSE(r.mixed);
    CHECK_FALSE(r.cutmix);
    CHECK(r.lam == 1.0f);
    for (int64_t k = 0; k < x.numel(); ++k) CHECK(r.images[k] == x[k]);
    check_targets(r.targets, y, 1.0f, m.label_smoothing);
  };
  auto m = make(3, 0.8f, 1.0f);
  m.prob = 0.0f;
  unmixed(m);
  unmixed(make(3, 0.0f, 0.0f));
  // without smoothing the unmixed targets are one-hots
  auto hard = make(3, 0.0f, 0.0f);
  hard.label_smoothing = 0.0f;
  unmixed(hard);

  // the same seed gives the same batch; another seed another lam
  const auto both = make(3, 0.8f, 1.0f);
  ssl::rng a(9), b(9), c(10);
  const auto ra = both(x, y, a), rb = both(x, y, b), rc = both(x, y, c);
  CHECK(ra.lam == rb.lam);
  CHECK(ra.cutmix == rb.cutmix);
  for (int64_t k = 0; k < x.numel(); ++k) CHECK(ra.images[k] == rb.images[k]);
  for (int64_t k = 0; k < ra.targets.numel(); ++k) CHECK(ra.targets[k] == rb.targets[k]);
  CHECK(ra.lam != rc.lam);

  // switch_prob 0: always mixup, 1: always cutmix, 0.5: both; prob 0.5: some batches unmixed
  auto count = [&](float switch_prob, float prob) {
    auto s = make(3, 0.8f, 1.0f);
    s.switch_prob = switch_prob;
    s.prob = prob;
    int cut = 0, mixed = 0;
    for (uint64_t seed = 0; seed < 200; ++seed) {
      ssl::rng g(seed);
      const auto p = s.draw(x, g);
      cut += p.cutmix;
      mixed += p.mixed;
    }
    return std::pair{cut, mixed};
  };
  CHECK(count(0.0f, 1.0f) == std::pair{0, 200});
  CHECK(count(1.0f, 1.0f) == std::pair{200, 200});
  const auto [cut, mixed] = count(0.5f, 1.0f);
  CHECK(cut == Approx(100).margin(30));
  CHECK(mixed == 200);
  CHECK(count(0.5f, 0.5f).second == Approx(100).margin(30));
}

TEST_CASE("mixup_cutmix rejects bad input with typed errors") {
  const tensor<cpu> x = random_batch(2, 1, 4, 4, 4);
  const std::vector<int64_t> y{0, 1};
  ssl::rng g(0);
  CHECK_THROWS_AS(aug::mixup_cutmix{}(x, y, g), ssl::value_error);  // num_classes not set
  CHECK_THROWS_WITH(aug::mixup_cutmix{}(x, y, g), Catch::Contains("num_classes > 0"));
  const auto m = make(2, 0.8f, 1.0f);
  CHECK_THROWS_AS(m(x, std::vector<int64_t>{0, 2}, g), ssl::value_error);
  CHECK_THROWS_WITH(m(x, std::vector<int64_t>{-1, 0}, g), Catch::Contains("[0, 2)") && Catch::Contains("-1"));
  CHECK_THROWS_AS(m(x, std::vector<int64_t>{0, 1, 1}, g), ssl::shape_error);
  CHECK_THROWS_WITH(m(x, std::vector<int64_t>{0}, g), Catch::Contains("expected 2 labels"));
  CHECK_THROWS_AS(m(tensor<cpu>(ssl::shape{2, 4, 4}, 0.0f), y, g), ssl::shape_error);
  CHECK_THROWS_AS(m(tensor<cpu>(ssl::shape{0, 1, 4, 4}), std::vector<int64_t>{}, g), ssl::shape_error);
  CHECK_THROWS_AS(make(2, -0.1f, 1.0f)(x, y, g), ssl::value_error);
  CHECK_THROWS_AS(make(2, 0.8f, -1.0f)(x, y, g), ssl::value_error);
  auto bad = m;
  bad.prob = 1.5f;
  CHECK_THROWS_AS(bad(x, y, g), ssl::value_error);
  bad = m;
  bad.switch_prob = -0.5f;
  CHECK_THROWS_AS(bad(x, y, g), ssl::value_error);
  bad = m;
  bad.label_smoothing = 2.0f;
  CHECK_THROWS_AS(bad(x, y, g), ssl::value_error);
  aug::mixup_cutmix::params p;
  p.mixed = p.cutmix = true;
  p.top = 3, p.height = 2, p.width = 1;  // rows 3..4 of a 4-row image
  CHECK_THROWS_AS(m.apply(x, y, p), ssl::value_error);
  p = {};
  p.lam = 1.5f;
  CHECK_THROWS_AS(m.apply(x, y, p), ssl::value_error);
}
