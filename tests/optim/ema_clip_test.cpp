#include <catch2/catch.hpp>
#include <cmath>
#include <ssl/optim/clip_grad.hpp>
#include <ssl/optim/ema.hpp>

using Catch::Matchers::Contains;
using ssl::tensor;

namespace {
ssl::parameter<ssl::cpu> param_of(std::vector<float> v, ssl::param_kind k = ssl::param_kind::weight) {
  ssl::parameter<ssl::cpu> p({int64_t(v.size())}, k);
  p.value = tensor<ssl::cpu>::from({int64_t(v.size())}, v);
  p.grad = tensor<ssl::cpu>::from({int64_t(v.size())}, v);
  return p;
}
}  // namespace

TEST_CASE("ema moves the teacher towards the student") {
  auto t0 = param_of({1, 2, 3}), t1 = param_of({0, 0});
  auto s0 = param_of({3, 2, 1}), s1 = param_of({10, -10});
  ssl::param_list<ssl::cpu> teacher{{"a", &t0}, {"b", &t1}}, student{{"a", &s0}, {"b", &s1}};
  ssl::ema_update(teacher, student, 0.75f);
  CHECK(t0.value[0] == Approx(0.75 * 1 + 0.25 * 3));
  CHECK(t0.value[2] == Approx(0.75 * 3 + 0.25 * 1));
  CHECK(t1.value[1] == Approx(-2.5));
  CHECK(s1.value[1] == -10.0f);  // the student is untouched
  ssl::ema_update(teacher, student, 1.0f);
  CHECK(t1.value[1] == Approx(-2.5));
  ssl::copy_parameters(teacher, student);
  CHECK(t1.value[0] == 10.0f);
}

TEST_CASE("ema of a large tensor matches the formula everywhere") {
  tensor<ssl::cpu> t({100000}), s({100000});
  for (int64_t i = 0; i < t.numel(); ++i) {
    t[i] = float(i % 7);
    s[i] = float(i % 5);
  }
  ssl::ema_update(t, s, 0.9f);
  for (int64_t i : {int64_t(0), int64_t(40000), int64_t(99999)})
    CHECK(t[i] == Approx(0.9 * (i % 7) + 0.1 * (i % 5)));
}

TEST_CASE("ema names the first mismatch") {
  auto a = param_of({1, 2}), b = param_of({1, 2, 3}), c = param_of({1});
  ssl::param_list<ssl::cpu> teacher{{"x", &a}, {"y", &c}};
  ssl::param_list<ssl::cpu> renamed{{"x", &a}, {"z", &c}};
  ssl::param_list<ssl::cpu> reshaped{{"x", &b}, {"y", &c}};
  ssl::param_list<ssl::cpu> shorter{{"x", &a}};
  CHECK_THROWS_WITH(ssl::ema_update(teacher, renamed, 0.9f), Contains("'y' in the teacher but 'z' in the student"));
  CHECK_THROWS_WITH(ssl::ema_update(teacher, reshaped, 0.9f),
                    Contains("'x' has shape (2) in the teacher but (3) in the student"));
  CHECK_THROWS_WITH(ssl::ema_update(teacher, shorter, 0.9f), Contains("teacher has 2 parameters, student has 1"));
  CHECK_THROWS_WITH(ssl::ema_update(teacher, teacher, 1.5f), Contains("momentum must be in [0, 1], got 1.5"));
}

TEST_CASE("clip_grad_norm scales all gradients to the global norm") {
  auto a = param_of({3, 0}), b = param_of({0, 4});  // global norm 5
  ssl::param_list<ssl::cpu> pl{{"a", &a}, {"b", &b}};
  CHECK(ssl::clip_grad_norm(pl, 10.0) == Approx(5.0));
  CHECK(a.grad[0] == 3.0f);  // below the limit: untouched
  CHECK(ssl::clip_grad_norm(pl, 1.0) == Approx(5.0));
  CHECK(a.grad[0] == Approx(0.6).epsilon(1e-5));
  CHECK(b.grad[1] == Approx(0.8).epsilon(1e-5));
  b.grad[0] = std::nanf("");
  CHECK_THROWS_AS(ssl::clip_grad_norm(pl, 1.0), ssl::numeric_error);
}

TEST_CASE("clip_grad_per_param clips each gradient separately (DINO)") {
  auto a = param_of({3, 4}), b = param_of({0.3f, 0.4f});
  ssl::param_list<ssl::cpu> pl{{"a", &a}, {"b", &b}};
  const auto norms = ssl::clip_grad_per_param(pl, 1.0);
  CHECK(norms[0] == Approx(5.0));
  CHECK(norms[1] == Approx(0.5));
  CHECK(a.grad[0] == Approx(0.6).epsilon(1e-5));
  CHECK(b.grad[0] == Approx(0.3f));  // already within the limit
  CHECK_THROWS_AS(ssl::clip_grad_per_param(pl, 0.0), ssl::value_error);
}
