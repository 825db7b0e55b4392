#include <catch2/catch.hpp>
#include <ssl/optim/schedule.hpp>

#include "support/fixtures.hpp"

using Catch::Matchers::Contains;

static_assert(ssl::Schedule<ssl::constant_schedule>);
static_assert(ssl::Schedule<ssl::warmup_cosine_schedule>);
static_assert(ssl::Schedule<ssl::step_schedule>);
static_assert(ssl::Schedule<ssl::any_schedule>);

namespace {
template <class S>
double schedule_error(const S& s, int64_t total, const ssl::tensor<ssl::cpu>& expected) {
  ssl::tensor<ssl::cpu> got(expected.shape());
  for (int64_t i = 0; i < got.numel(); ++i) got[i] = s(i, total);
  return ssl_test::rel_error(got, expected);
}
}  // namespace

TEST_CASE("schedules match the python reference") {
  ssl_test::fixture fx("optim/schedules.json");
  CHECK(schedule_error(ssl::warmup_cosine_schedule{0.3f, 1e-3f, 10, 0.0f}, 50, fx.tensor("lr_warmup_cosine")) <= 1e-4);
  CHECK(schedule_error(ssl::warmup_cosine_schedule{0.04f, 0.4f}, 40, fx.tensor("wd_cosine")) <= 1e-4);
  CHECK(schedule_error(ssl::warmup_cosine_schedule{0.996f, 1.0f}, 30, fx.tensor("ema_cosine")) <= 1e-4);
  CHECK(schedule_error(ssl::linear_warmup(0.04f, 0.07f, 12), 30, fx.tensor("temp_warmup")) <= 1e-4);
  CHECK(schedule_error(ssl::step_schedule{0.1f, 0.1f, {10, 25}}, 40, fx.tensor("step_decay")) <= 1e-4);
  const ssl::any_schedule erased = ssl::warmup_cosine_schedule{0.04f, 0.4f};
  CHECK(schedule_error(erased, 40, fx.tensor("wd_cosine")) <= 1e-4);
}

TEST_CASE("schedule end points") {
  const ssl::warmup_cosine_schedule s{1.0f, 0.0f, 5, 0.2f};
  CHECK(s(0, 20) == Approx(0.2f));
  CHECK(s(5, 20) == Approx(1.0f));
  CHECK(s(20, 20) == Approx(0.0f).margin(1e-7));
  CHECK(s(100, 20) == Approx(0.0f).margin(1e-7));
  CHECK(ssl::constant_schedule{0.5f}(7, 10) == 0.5f);
}

TEST_CASE("schedules reject bad arguments") {
  const ssl::warmup_cosine_schedule s{1.0f, 0.0f, 5};
  CHECK_THROWS_WITH(s(0, 0), Contains("total_steps must be > 0, got 0"));
  CHECK_THROWS_WITH(s(0, 3), Contains("warmup_steps must be in [0, 3], got 5"));
  CHECK_THROWS_AS(s(-1, 10), ssl::value_error);
}
