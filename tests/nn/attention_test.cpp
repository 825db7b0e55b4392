#include <catch2/catch.hpp>
#include <ssl/nn/multi_head_attention.hpp>
#include <ssl/testing/gradient_check.hpp>
#include <support/fixtures.hpp>

using ssl::shape;
using T = ssl::tensor<ssl::cpu>;

TEST_CASE("multi_head_attention matches PyTorch: output, attention probabilities, all gradients") {
  ssl_test::fixture fx("vit/attention.json");
  ssl::multi_head_attention<> attn({.dim = 16, .heads = 2});
  auto params = ssl::parameters(attn);
  REQUIRE(params.size() == 4);
  for (auto& p : params) p.p->value = fx.tensor(p.name);  // timm names: qkv.weight, qkv.bias, proj.weight, proj.bias
  const T x = fx.tensor("x");
  auto [y, saved] = attn.forward(x);
  CHECK(ssl_test::rel_error(y, fx.tensor("y")) <= 1e-4);
  CHECK(ssl_test::rel_error(saved.probs, fx.tensor("probs")) <= 1e-4);
  T probs;
  CHECK(ssl_test::rel_error(attn.infer(x, &probs), fx.tensor("y")) <= 1e-4);
  CHECK(ssl_test::rel_error(probs, fx.tensor("probs")) <= 1e-4);
  CHECK(ssl_test::rel_error(attn.backward(saved, fx.tensor("dy")), fx.tensor("dx")) <= 1e-4);
  for (auto& p : params) {
    INFO(p.name);
    CHECK(ssl_test::rel_error(p.p->grad, fx.tensor("d_" + p.name)) <= 1e-4);
  }
}

TEST_CASE("multi_head_attention passes the gradient check (input and every parameter)") {
  ssl::multi_head_attention<> attn({.dim = 8, .heads = 2, .init_std = 0.3f}, ssl::rng(3));
  ssl::rng g(4);
  T x(shape{2, 5, 8});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = g.normal();
  ssl::testing::gradient_check_options o;
  o.eps = 5e-3;
  o.max_checks = 32;
  auto r = ssl::testing::check_module_gradients(attn, x, o);
  INFO(r.report());
  CHECK(r.ok());
}

TEST_CASE("attention backward accumulates parameter gradients across calls") {
  ssl::multi_head_attention<> attn({.dim = 8, .heads = 4}, ssl::rng(1));
  ssl::rng g(2);
  T x(shape{1, 3, 8}), dy(shape{1, 3, 8});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = g.normal(), dy[i] = g.normal();
  auto o = attn.forward(x);
  attn.backward(o.saved, dy);
  const T once = attn.qkv().weight().grad;
  attn.backward(o.saved, dy);
  T twice = once;
  twice.vec() *= 2.0f;
  CHECK(ssl_test::rel_error(attn.qkv().weight().grad, twice) <= 1e-6);
  CHECK(once.vec().norm() > 0.0f);
}

TEST_CASE("multi_head_attention rejects bad configurations and inputs with typed errors") {
  CHECK_THROWS_AS(ssl::multi_head_attention<>({.dim = 10, .heads = 3}), ssl::value_error);
  ssl::multi_head_attention<> attn({.dim = 8, .heads = 2});
  CHECK_THROWS_AS(attn.forward(T(shape{2, 5, 6})), ssl::shape_error);
  CHECK_THROWS_AS(attn.infer(T(shape{5, 8})), ssl::shape_error);
  try {
    attn.infer(T(shape{2, 5, 6}));
  } catch (const ssl::shape_error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("(N, T, 8)") != std::string::npos);
    CHECK(msg.find("(2, 5, 6)") != std::string::npos);
  }
}
