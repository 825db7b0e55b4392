// vit with a mask token (vit_options::mask_token): hidden patches replaced before the position
// embedding (iBOT / DINOv2), gradients of every parameter (mask_token included) and of the input.
#include <catch2/catch.hpp>
#include <ssl/encoders/vit.hpp>
#include <ssl/testing/gradient_check.hpp>
#include <support/fixtures.hpp>

using ssl::shape;
using T = ssl::tensor<ssl::cpu>;

namespace {
ssl::vit_options tiny(bool mask_token) {
  return {.image_size = 8, .patch = 4, .in_channels = 1, .dim = 8, .depth = 1, .heads = 2, .mask_token = mask_token};
}
T random(const shape& s, uint64_t seed) {
  ssl::rng g(seed);
  T t(s);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = g.normal();
  return t;
}
// Sample 0 hides patches 1 and 2, sample 1 nothing, sample 2 all four.
ssl::patch_mask three_masks() {
  return {.batch = 3, .tokens = 4, .hidden = {0, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1}};
}
}  // namespace

TEST_CASE("vit mask token: named, zero-initialised, and off by default") {
  ssl::vit<> plain(tiny(false), ssl::rng(1)), with(tiny(true), ssl::rng(1));
  CHECK(ssl::parameter_count(with) == ssl::parameter_count(plain) + 8);
  auto params = ssl::parameters(with);
  CHECK(params[1].name == "mask_token");
  CHECK(params[1].p->value.shape() == shape{1, 8});
  CHECK(params[1].p->value.vec().squaredNorm() == 0.0f);
  CHECK_FALSE(plain.has_mask_token());
  CHECK_THROWS_AS(plain.mask_token(), ssl::value_error);
  const T x = random({3, 1, 8, 8}, 2);
  const ssl::patch_mask pm = three_masks();
  CHECK_THROWS_AS(plain.forward_tokens(x, nullptr, &pm), ssl::value_error);
  // same weights otherwise: without a mask both give the same tokens
  CHECK(ssl_test::rel_error(with.infer_tokens(x), plain.infer_tokens(x)) == 0.0);
  ssl::patch_mask wrong = pm;
  wrong.tokens = 5;
  CHECK_THROWS_AS(with.forward_tokens(x, nullptr, &wrong), ssl::shape_error);
  CHECK(pm.hidden_count() == 6);
  CHECK(pm.hidden_in(0) == 2);
  CHECK(pm.hidden_in(1) == 0);
}

TEST_CASE("vit mask token: hidden patches ignore their pixels and take the token") {
  ssl::vit<> v(tiny(true), ssl::rng(3));
  for (int64_t c = 0; c < 8; ++c) v.mask_token().value[c] = 0.1f * float(c) - 0.3f;
  const T x = random({3, 1, 8, 8}, 4);
  const ssl::patch_mask pm = three_masks();
  const auto o = v.forward_tokens(x, nullptr, &pm);
  CHECK(o.y.shape() == shape{3, 5, 8});
  // changing the pixels of a hidden patch (sample 0, patch 1: rows 0-3, columns 4-7) changes nothing
  T x2 = x;
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 4; j < 8; ++j) x2.at(0, 0, i, j) += 1.0f;
  CHECK(ssl_test::rel_error(v.forward_tokens(x2, nullptr, &pm).y, o.y) == 0.0);
  // ... but changes the output when the patch is visible
  CHECK(ssl_test::rel_error(v.forward_tokens(x2).y, v.forward_tokens(x).y) > 1e-3);
  // sample 1 hides nothing: as without a mask
  const T plain = v.infer_tokens(x);
  for (int64_t i = 0; i < 5 * 8; ++i) CHECK(o.y[40 + i] == Approx(plain[40 + i]).margin(1e-6));
}

TEST_CASE("vit mask token: gradients of every parameter and of the input pass the checker") {
  ssl::vit<> v(tiny(true), ssl::rng(5));
  for (auto& r : ssl::parameters(v))  // away from the init's zeros and ones
    for (int64_t i = 0; i < r.p->value.numel(); ++i) r.p->value[i] += 0.2f * float(std::sin(double(i) + 1.0));
  const T x = random({3, 1, 8, 8}, 6), w = random({3, 5, 8}, 7);
  const ssl::patch_mask pm = three_masks();
  auto params = ssl::parameters(v);
  for (auto& r : params) r.p->grad.zero();
  const auto o = v.forward_tokens(x, nullptr, &pm);
  const T dx = v.backward_tokens(o.saved, w);
  std::vector<T> values{x}, grads{dx};
  for (auto& r : params) values.push_back(r.p->value), grads.push_back(r.p->grad);
  CHECK(params[1].p->grad.vec().squaredNorm() > 0.0f);  // the mask token receives gradient
  auto loss = [&](std::vector<T>& in) {
    for (size_t k = 1; k < in.size(); ++k) params[k - 1].p->value = in[k];
    const T y = v.forward_tokens(in[0], nullptr, &pm).y;
    double s = 0;
    for (int64_t i = 0; i < y.numel(); ++i) s += double(y[i]) * w[i];
    return s;
  };
  auto res = ssl::testing::check_function_gradients(loss, values, grads, {.eps = 1e-3, .max_checks = 8});
  INFO(res.report());
  CHECK(res.ok());
  // hidden patches pass no gradient to their pixels
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 4; j < 8; ++j) CHECK(dx.at(0, 0, i, j) == 0.0f);
}
