// Barlow Twins and VICReg as methods (joint_embedding<E, H, L>): the step's gradients against
// finite differences of its loss, the loss of two separate forwards (BN statistics per view),
// errors naming what was expected, and learning on a tiny problem.
#include "method_support.hpp"

using namespace method_test;

namespace {
auto make_barlow(float lambda = 0.01f) {
  return ssl::barlow_twins_method<ssl::mlp_encoder<>, ssl::projection_mlp<>>(tiny_encoder(64), tiny_head(16, 24, 12, 5, 3),
                                                                             ssl::barlow_twins(lambda));
}
auto make_vicreg(ssl::vicreg loss = ssl::vicreg()) {
  return ssl::vicreg_method<ssl::mlp_encoder<>, ssl::projection_mlp<>>(tiny_encoder(64), tiny_head(16, 24, 12, 5, 3),
                                                                       loss);
}
}  // namespace

TEST_CASE("barlow_twins / vicreg methods: train_step gradients match finite differences of the loss") {
  // a small step: the batch standardisation over 8 rows curves the loss sharply (at 1e-3 a few
  // coordinates of 268 are off by 5-15%, at 3e-4 none)
  const ssl::testing::gradient_check_options o{.eps = 3e-4};
  const auto views = two_views(8, 1, 8, 8, 21);
  {
    auto m = make_barlow();
    auto res = check_step_gradients(m, [&] { return m.train_step(views).loss; }, all_params, o);
    INFO("barlow_twins: " << res.report());
    CHECK(res.ok());
  }
  {
    // VICReg's default 25 / 25 / 1 make a loss of ~20, whose float32 rounding (ulp 2e-6) over 2 eps
    // leaves finite differences only ~3e-3 apart; the same loss / 25 keeps its shape at ~1.
    auto m = make_vicreg(ssl::vicreg(1.0f, 1.0f, 0.04f));
    auto res = check_step_gradients(m, [&] { return m.train_step(views).loss; }, all_params, o);
    INFO("vicreg: " << res.report());
    CHECK(res.ok());
  }
}

TEST_CASE("joint_embedding: the loss of one forward per view (BatchNorm statistics per view)") {
  const auto views = two_views(8, 1, 8, 8, 22);
  auto m = make_barlow();
  auto per_view = [&](const ssl::tensor<ssl::cpu>& v) { return m.projector().forward(m.encoder().forward(v).y).y; };
  const float expected = ssl::barlow_twins(0.01f)(per_view(views[0]), per_view(views[1])).value;
  CHECK(m.train_step(views).loss == Approx(expected).epsilon(1e-6));
  // one forward over both views (SimCLR's batching) normalises with other statistics: another loss
  const auto both = per_view(ssl::concat_batch({&views[0], &views[1]}));
  ssl::tensor<ssl::cpu> z1(ssl::shape{8, 12}), z2(ssl::shape{8, 12});
  std::copy_n(both.data(), 96, z1.data());
  std::copy_n(both.data() + 96, 96, z2.data());
  CHECK(std::abs(ssl::barlow_twins(0.01f)(z1, z2).value - expected) > 1e-3f);
  auto v = make_vicreg();
  CHECK(v.train_step(views).loss ==
        Approx(ssl::vicreg()(v.projector().forward(v.encoder().forward(views[0]).y).y,
                             v.projector().forward(v.encoder().forward(views[1]).y).y)
                   .value)
            .epsilon(1e-6));
  CHECK(std::string(decltype(m)::name()) == "barlow_twins");
  CHECK(std::string(decltype(v)::name()) == "vicreg");
}

TEST_CASE("joint_embedding: bad compositions and batches throw, naming what was expected") {
  expect_shape_error_naming(
      [] {
        ssl::barlow_twins_method<ssl::mlp_encoder<>, ssl::projection_mlp<>>(tiny_encoder(64, 16), tiny_head(12, 24, 12));
      },
      {"barlow_twins", "16", "12"});
  auto m = make_vicreg();
  CHECK_THROWS_AS(m.train_step({random_batch(4, 1, 8, 8, 1)}), ssl::value_error);
  expect_shape_error_naming([&] { m.train_step({random_batch(4, 1, 8, 8, 1), random_batch(5, 1, 8, 8, 2)}); },
                            {"(4, 1, 8, 8)", "(5, 1, 8, 8)"});
  expect_shape_error_naming([&] { m.train_step({random_batch(1, 1, 8, 8, 1), random_batch(1, 1, 8, 8, 2)}); },
                            {"vicreg", "at least 2"});
  // a gather that forgot the other rank
  m.set_replica(1, 2);
  m.set_batch_gather([](const ssl::tensor<ssl::cpu>& t) { return t; });
  CHECK(m.loss_across_ranks());
  expect_shape_error_naming([&] { m.train_step(two_views(4, 1, 8, 8, 3)); }, {"vicreg", "2 ranks of 4"});
}

TEST_CASE("barlow_twins / vicreg methods: a few steps lower the loss on a tiny problem") {
  const auto views = two_views(16, 1, 8, 8, 23);
  {
    auto m = make_barlow();
    auto [first, last] = train_a_little(m, [&] { return m.train_step(views).loss; }, 30, 0.05f);
    INFO("barlow_twins " << first << " -> " << last);
    CHECK(last < 0.7f * first);
  }
  {
    auto m = make_vicreg();
    auto [first, last] = train_a_little(m, [&] { return m.train_step(views).loss; }, 30, 0.05f);
    INFO("vicreg " << first << " -> " << last);
    CHECK(last < 0.7f * first);
  }
}
