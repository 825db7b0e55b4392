#include <catch2/catch.hpp>
#include <ssl/heads/dino_head.hpp>
#include <ssl/testing/gradient_check.hpp>

#include "support/fixtures.hpp"

namespace {

ssl::dino_head_options opts_from(const ssl_test::fixture& fx, int layers, bool norm_last) {
  const auto x = fx.tensor("x");
  const auto v = fx.tensor("last_layer.weight_v");
  const int64_t hidden = layers > 1 ? fx.tensor("mlp.0.weight").dim(0) : 1;
  return {.in_dim = x.dim(1), .hidden_dim = hidden, .bottleneck_dim = v.dim(1), .out_dim = v.dim(0), .layers = layers,
          .norm_last_layer = norm_last};
}

// Loads every parameter by its PyTorch name.
void load(ssl::dino_head<>& h, const ssl_test::fixture& fx) {
  for (auto& r : ssl::parameters(h)) {
    INFO(r.name);
    const auto t = fx.tensor(r.name);
    REQUIRE(t.shape() == r.p->value.shape());
    r.p->value = t;
  }
}

void check_against(const std::string& file, int layers, bool norm_last) {
  ssl_test::fixture fx(file);
  ssl::dino_head<> h(opts_from(fx, layers, norm_last), ssl::rng(1));
  load(h, fx);
  auto o = h.forward(fx.tensor("x"));
  CHECK(ssl_test::rel_error(o.y, fx.tensor("y")) <= 1e-4);
  CHECK(ssl_test::rel_error(h.infer(fx.tensor("x")), fx.tensor("y")) <= 1e-4);
  const auto dx = h.backward(o.saved, fx.tensor("dy"));
  CHECK(ssl_test::rel_error(dx, fx.tensor("dx")) <= 1e-4);
  for (auto& r : ssl::parameters(h)) {
    INFO(r.name);
    CHECK(ssl_test::rel_error(r.p->grad, fx.tensor("grad." + r.name)) <= 1e-4);
  }
}

}  // namespace

TEST_CASE("dino_head: names follow PyTorch's DINOHead and weight_g is frozen at 1") {
  ssl::dino_head<> h(ssl::dino_head_options::w3());
  const auto ps = ssl::parameters(h);
  std::vector<std::string> names;
  for (auto& r : ps) names.push_back(r.name);
  CHECK(names == std::vector<std::string>{"mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias", "mlp.4.weight",
                                          "mlp.4.bias", "last_layer.weight_g", "last_layer.weight_v"});
  CHECK(ps[6].p->frozen);
  CHECK(!ps[7].p->frozen);
  CHECK(ps[6].p->value.shape() == ssl::shape{4096, 1});
  CHECK(ps[7].p->value.shape() == ssl::shape{4096, 128});
  for (int64_t i = 0; i < 4096; ++i) REQUIRE(ps[6].p->value[i] == 1.0f);
  // 192*512+512 + 512*512+512 + 512*128+128 + 4096 + 4096*128
  CHECK(ssl::parameter_count(h) == 98816 + 262656 + 65664 + 4096 + 524288);
  // Rows of the effective last-layer weight have unit norm.
  const auto w = h.last_layer_weight();
  for (int64_t o = 0; o < 4096; o += 511) {
    double s = 0;
    for (int64_t k = 0; k < 128; ++k) s += double(w[o * 128 + k]) * w[o * 128 + k];
    CHECK(s == Approx(1.0).epsilon(1e-5));
  }
  ssl::dino_head<> g({.in_dim = 8, .hidden_dim = 8, .bottleneck_dim = 4, .out_dim = 6, .norm_last_layer = false});
  CHECK(!ssl::parameters(g)[6].p->frozen);
  // freezing the last layer (DINO's first epoch) and releasing it; weight_g stays frozen under norm_last_layer
  g.set_last_layer_frozen(true);
  CHECK((g.weight_v().frozen && g.weight_g().frozen));
  g.set_last_layer_frozen(false);
  CHECK((!g.weight_v().frozen && !g.weight_g().frozen));
  h.set_last_layer_frozen(true);
  h.set_last_layer_frozen(false);
  CHECK((!h.weight_v().frozen && h.weight_g().frozen));
}

TEST_CASE("dino_head: forward, infer and backward match PyTorch (3 layers, weight_g = 1)") {
  check_against("dino/head.json", 3, true);
}

TEST_CASE("dino_head: one linear layer and a learned weight_g match PyTorch") {
  check_against("dino/head_1layer_g.json", 1, false);
}

TEST_CASE("dino_head: gradients match finite differences") {
  ssl::dino_head<> h({.in_dim = 5, .hidden_dim = 7, .bottleneck_dim = 4, .out_dim = 9, .layers = 3}, ssl::rng(3));
  // larger weights than the 0.02 init, so the finite differences are well above float noise
  for (auto& r : ssl::parameters(h)) {
    ssl::rng g(11);
    if (r.name != "last_layer.weight_g")
      for (int64_t i = 0; i < r.p->value.numel(); ++i) r.p->value[i] = 0.5f * g.normal();
  }
  ssl::tensor<ssl::cpu> x(ssl::shape{3, 5});
  ssl::rng g(5);
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = g.normal();
  auto res = ssl::testing::check_module_gradients(h, x, {.eps = 1e-2, .max_checks = 30});
  INFO(res.report());
  CHECK(res.ok());
}

TEST_CASE("dino_head: zero_last_layer_grad clears only the last layer") {
  ssl::dino_head<> h({.in_dim = 4, .hidden_dim = 6, .bottleneck_dim = 3, .out_dim = 5}, ssl::rng(2));
  ssl::tensor<ssl::cpu> x(ssl::shape{2, 4}, 0.5f);
  x[1] = -1.0f;
  auto o = h.forward(x);
  h.backward(o.saved, ssl::tensor<ssl::cpu>(o.y.shape(), 1.0f));
  h.backward(o.saved, ssl::tensor<ssl::cpu>(ssl::shape{2, 5}, 0.0f) /* no change */);
  CHECK(h.weight_v().grad.vec().norm() > 0);
  h.zero_last_layer_grad();
  CHECK(h.weight_v().grad.vec().norm() == 0);
  CHECK(h.weight_g().grad.vec().norm() == 0);
  CHECK(h.mlp_layer(0).weight().grad.vec().norm() > 0);
}

TEST_CASE("dino_head: wrong feature size throws a shape_error naming both sizes") {
  ssl::dino_head<> h({.in_dim = 4, .hidden_dim = 6, .bottleneck_dim = 3, .out_dim = 5});
  ssl::tensor<ssl::cpu> x(ssl::shape{2, 7}, 1.0f);
  CHECK_THROWS_AS(h.forward(x), ssl::shape_error);
  try {
    h.infer(x);
  } catch (const ssl::shape_error& e) {
    const std::string m = e.what();
    CHECK(m.find("(N, 4)") != std::string::npos);
    CHECK(m.find("(2, 7)") != std::string::npos);
  }
  CHECK_THROWS_AS(ssl::dino_head<>({.layers = 0}), ssl::value_error);
}
