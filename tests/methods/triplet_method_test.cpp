#include "method_support.hpp"

using namespace method_test;

TEST_CASE("triplet: gradients with pseudo-labels (two views of an image = one label) match finite differences") {
  ssl::triplet_method m(tiny_encoder(64), tiny_head(16, 32, 8));
  const auto views = two_views(6, 1, 8, 8, 41);
  auto res = check_step_gradients(m, [&] { return m.train_step(views).loss; }, 6);
  INFO(res.report());
  CHECK(res.ok());
}

TEST_CASE("triplet: labelled batches use the class labels for every view") {
  ssl::triplet_method m(tiny_encoder(64), tiny_head(16, 32, 8),
                        ssl::triplet_mining(ssl::triplet_strategy::batch_hard, 0.3f, ssl::triplet_distance::cosine));
  const auto views = two_views(6, 1, 8, 8, 42);
  const std::vector<int64_t> y{0, 1, 0, 1, 2, 2};
  // the method's loss equals the mining loss on its embeddings with labels repeated per view
  const auto x = ssl::concat_batch({&views[0], &views[1]});
  const auto e = m.head().forward(m.encoder().forward(x).y).y;
  std::vector<int64_t> yy = y;
  yy.insert(yy.end(), y.begin(), y.end());
  const float expected = m.loss()(e, yy).value;
  CHECK(m.train_step(views, y).loss == Approx(expected).epsilon(1e-5));
  CHECK(m.train_step(views).loss != Approx(expected).epsilon(1e-5));  // pseudo-labels differ
  // batch-hard mining is piecewise smooth: small steps keep the mined triplets fixed
  auto res = check_step_gradients(m, [&] { return m.train_step(views, y).loss; }, 4, {.eps = 2e-4, .atol = 3e-3});
  INFO(res.report());
  CHECK(res.ok());
  expect_shape_error_naming([&] { m.train_step(views, std::vector<int64_t>{0, 1}); }, {"6", "2", "labels"});
}

TEST_CASE("triplet: a bad composition throws; a few steps lower the loss") {
  expect_shape_error_naming([] { ssl::triplet_method(tiny_encoder(64, 16), tiny_head(10, 32, 8)); }, {"16", "10"});
  ssl::triplet_method m(tiny_encoder(64, 32), tiny_head(32, 32, 8));
  const auto views = two_views(16, 1, 8, 8, 43);
  auto [first, last] = train_a_little(m, [&] { return m.train_step(views).loss; }, 40, 0.05f);
  INFO(first << " -> " << last);
  CHECK(last < 0.6f * first);
}

TEST_CASE("triplet: the default mining is semi-hard (cosine, margin 0.3), not the stalling batch-hard") {
  ssl::triplet_method m(tiny_encoder(64), tiny_head(16, 32, 8));
  CHECK(m.loss().strategy() == ssl::triplet_strategy::semi_hard);
  CHECK(m.loss().margin() == 0.3f);
  // the step's loss is semi-hard mining on the embeddings of both views with pseudo-labels
  const auto views = two_views(8, 1, 8, 8, 44);
  const auto x = ssl::concat_batch({&views[0], &views[1]});
  const auto e = m.head().forward(m.encoder().forward(x).y).y;
  const auto y = ssl::methods_detail::pseudo_labels(2, 8);
  const float semi = ssl::triplet_mining(ssl::triplet_strategy::semi_hard, 0.3f, ssl::triplet_distance::cosine)(e, y).value;
  const float hard = ssl::triplet_mining(ssl::triplet_strategy::batch_hard, 0.3f, ssl::triplet_distance::cosine)(e, y).value;
  CHECK(m.train_step(views).loss == Approx(semi).epsilon(1e-5));
  CHECK(std::abs(semi - hard) > 1e-3);
}
