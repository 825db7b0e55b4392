// byol, simsiam, barlow_twins, vicreg, koleo: PyTorch fixtures, gradient checks, bad input.
#include <ssl/losses/barlow_twins.hpp>
#include <ssl/losses/koleo.hpp>
#include <ssl/losses/simsiam.hpp>
#include <ssl/losses/vicreg.hpp>

#include "loss_support.hpp"

using namespace loss_test;
using ssl_test::rel_error;

TEST_CASE("byol and simsiam match PyTorch") {
  for_each_case("byol.json", [](const fixture_case& c) {
    const auto b = ssl::byol()(c.t("p"), c.t("z"));
    CHECK(rel(b.value, c.s("value")) <= 1e-4);
    CHECK(rel_error(b.grad_p, c.t("grad_p")) <= 1e-4);
    const auto s = ssl::simsiam()(c.t("p"), c.t("z"));
    CHECK(rel(s.value, c.s("simsiam_value")) <= 1e-4);
    CHECK(rel_error(s.grad_p, c.t("simsiam_grad_p")) <= 1e-4);
  });
}

TEST_CASE("byol and simsiam gradients pass the checker; the target gets none") {
  const tensor p = randn({3, 5}, 21), z = randn({3, 5}, 22);
  const auto b = ssl::byol()(p, z);
  expect_gradients([&](std::vector<tensor>& in) { return double(ssl::byol()(in[0], z).value); }, {p}, {b.grad_p});
  const auto s = ssl::simsiam()(p, z);
  expect_gradients([&](std::vector<tensor>& in) { return double(ssl::simsiam()(in[0], z).value); }, {p}, {s.grad_p});
  // identical directions: loss 0 for byol, -1 for simsiam
  tensor z2 = p;
  for (int64_t i = 0; i < z2.numel(); ++i) z2[i] *= 3.0f;
  CHECK(ssl::byol()(p, z2).value == Approx(0.0f).margin(1e-6));
  CHECK(ssl::simsiam()(p, z2).value == Approx(-1.0f).epsilon(1e-6));
  CHECK_THROWS_AS(ssl::byol()(p, randn({3, 4}, 1)), ssl::shape_error);
}

TEST_CASE("barlow_twins matches PyTorch and passes the checker") {
  for_each_case("barlow_twins.json", [](const fixture_case& c) {
    const auto r = ssl::barlow_twins(c.s("lambda"))(c.t("z1"), c.t("z2"));
    CHECK(rel(r.value, c.s("value")) <= 1e-4);
    CHECK(rel_error(r.grad_z1, c.t("grad_z1")) <= 1e-4);
    CHECK(rel_error(r.grad_z2, c.t("grad_z2")) <= 1e-4);
  });
  const ssl::barlow_twins loss(0.1f);
  const tensor z1 = randn({6, 4}, 23), z2 = randn({6, 4}, 24);
  const auto r = loss(z1, z2);
  expect_gradients([&](std::vector<tensor>& in) { return double(loss(in[0], in[1]).value); }, {z1, z2},
                   {r.grad_z1, r.grad_z2}, 1e-2, 1e-3);
  CHECK_THROWS_AS(loss(tensor({1, 4}, 1.0f), tensor({1, 4}, 1.0f)), ssl::shape_error);
  CHECK_THROWS_AS(loss(z1, randn({5, 4}, 1)), ssl::shape_error);
  CHECK_THROWS_AS(ssl::barlow_twins(-1.0f), ssl::value_error);
}

TEST_CASE("vicreg matches PyTorch and passes the checker") {
  for_each_case("vicreg.json", [](const fixture_case& c) {
    const auto r = ssl::vicreg()(c.t("x"), c.t("y"));
    CHECK(rel(r.value, c.s("value")) <= 1e-4);
    CHECK(rel_error(r.grad_x, c.t("grad_x")) <= 1e-4);
    CHECK(rel_error(r.grad_y, c.t("grad_y")) <= 1e-4);
  });
  const ssl::vicreg loss;
  const tensor x = randn({5, 3}, 25, 0.5f), y = randn({5, 3}, 26, 0.5f);
  const auto r = loss(x, y);
  expect_gradients([&](std::vector<tensor>& in) { return double(loss(in[0], in[1]).value); }, {x, y},
                   {r.grad_x, r.grad_y}, 1e-3, 1e-3);
  CHECK_THROWS_AS(loss(tensor({1, 3}, 1.0f), tensor({1, 3}, 1.0f)), ssl::shape_error);
  CHECK_THROWS_AS(ssl::vicreg(25.0f, -1.0f), ssl::value_error);
}

TEST_CASE("koleo matches PyTorch and passes the checker") {
  for_each_case("koleo.json", [](const fixture_case& c) {
    const auto r = ssl::koleo()(c.t("x"));
    CHECK(rel(r.value, c.s("value")) <= 1e-4);
    CHECK(rel_error(r.grad_x, c.t("grad_x")) <= 1e-4);
  });
  const ssl::koleo loss;
  const tensor x = randn({5, 3}, 27);
  const auto r = loss(x);
  expect_gradients([&](std::vector<tensor>& in) { return double(loss(in[0]).value); }, {x}, {r.grad_x}, 1e-3, 1e-3);
  CHECK_THROWS_AS(loss(tensor({1, 3}, 1.0f)), ssl::shape_error);
}
