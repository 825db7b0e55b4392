// NNCLR: the loss's value and gradient and the support set's nearest neighbours against solo-learn's
// formula (PyTorch float64, scripts/fixtures/losses.py); finite differences; the support set's FIFO;
// bad input.
#include <ssl/losses/nnclr.hpp>

#include "loss_support.hpp"

using namespace loss_test;
using ssl_test::rel_error;

static_assert(ssl::Loss<ssl::nnclr, tensor, tensor>);

namespace {
/// A support set holding the rows of `rows` (M, D), enqueued in one batch.
ssl::nnclr_support_set<> filled_with(const tensor& rows) {
  ssl::nnclr_support_set<> s(rows.dim(0), rows.dim(1));
  s.enqueue(rows);
  return s;
}
}  // namespace

TEST_CASE("nnclr matches solo-learn's loss and nearest-neighbour lookup (value, gradient, neighbours)") {
  int cases = 0;
  for_each_case("nnclr.json", [&](const fixture_case& c) {
    const tensor support = c.t("support"), z = c.t("z"), index = c.t("index");
    const auto set = filled_with(support);
    std::vector<int64_t> idx;
    const tensor nn = set.nearest(z, &idx);
    REQUIRE(int64_t(idx.size()) == z.dim(0));
    for (int64_t i = 0; i < z.dim(0); ++i) CHECK(idx[size_t(i)] == int64_t(index[i]));
    CHECK(rel_error(nn, c.t("neighbours")) <= 1e-6);
    const ssl::nnclr loss(c.s("temperature"));
    const ssl::nnclr_result r = loss(nn, c.t("predictions"));
    CHECK(rel(r.value, c.s("value")) <= 1e-5);
    CHECK(rel_error(r.grad_p, c.t("grad_predictions")) <= 1e-4);
    ++cases;
  });
  CHECK(cases == 3);
}

TEST_CASE("nnclr: gradients match finite differences; the neighbours take none") {
  const ssl::nnclr loss(0.2f);
  const tensor nn = randn({6, 5}, 21), p = randn({6, 5}, 22);
  const auto r = loss(nn, p);
  expect_gradients([&](std::vector<tensor>& in) { return double(loss(nn, in[0]).value); }, {p}, {r.grad_p}, 1e-2, 1e-4);
  // the loss depends on the neighbours' directions only: scaling them changes nothing
  tensor nn3 = nn;
  for (int64_t i = 0; i < nn3.numel(); ++i) nn3[i] *= 3.0f;
  CHECK(loss(nn3, p).value == Approx(r.value).epsilon(1e-6));
}

TEST_CASE("nnclr: a prediction aligned with its neighbour and away from the others lowers the loss") {
  // identical neighbours and predictions, spread out: the diagonal dominates
  tensor e({4, 4}, 0.0f);
  for (int64_t i = 0; i < 4; ++i) e[i * 4 + i] = 1.0f;
  const ssl::nnclr loss(0.1f);
  const float aligned = loss(e, e).value;
  tensor shifted({4, 4}, 0.0f);  // prediction i points at neighbour i + 1
  for (int64_t i = 0; i < 4; ++i) shifted[i * 4 + (i + 1) % 4] = 1.0f;
  CHECK(aligned < 1e-3f);  // log(1 + 3 e^-10)
  CHECK(loss(e, shifted).value > 9.0f);  // about 10 = 1 / tau
}

TEST_CASE("nnclr_support_set: starts empty, fills as a FIFO of unit rows, wraps, keeps the last rows of a large batch") {
  ssl::nnclr_support_set s(5, 3);
  CHECK(s.filled() == 0);
  CHECK_THROWS_WITH(s.nearest(randn({2, 3}, 1)), Catch::Contains("empty"));
  tensor a({3, 3}, 0.0f);
  for (int64_t i = 0; i < 3; ++i) a[i * 3 + i] = 2.0f;  // 2 e_i: stored as e_i
  s.enqueue(a);
  CHECK(s.filled() == 3);
  CHECK(s.pointer() == 3);
  CHECK(s.rows()[0] == 1.0f);
  // the neighbour of (0.1, 0.9, 0.2) is e_2 (row 1), looked up among the filled rows only
  tensor q({1, 3}, 0.0f);
  q[0] = 0.1f, q[1] = 0.9f, q[2] = 0.2f;
  std::vector<int64_t> idx;
  const tensor nn = s.nearest(q, &idx);
  CHECK(idx[0] == 1);
  CHECK(nn[1] == 1.0f);
  // two more rows fill it; three more wrap around over rows 0..2
  s.enqueue(randn({2, 3}, 2));
  CHECK(s.filled() == 5);
  CHECK(s.pointer() == 0);
  const tensor b = randn({3, 3}, 3);
  s.enqueue(b);
  CHECK(s.pointer() == 3);
  double norm = 0;
  for (int64_t k = 0; k < 3; ++k) norm += double(s.rows()[k]) * s.rows()[k];
  CHECK(norm == Approx(1.0).epsilon(1e-6));
  CHECK(s.rows()[0] / b[0] > 0);  // row 0 now holds b's first row, normalised
  // a batch larger than the set: its last 5 rows, in order
  const tensor big = randn({7, 3}, 4);
  s.enqueue(big);
  CHECK(s.filled() == 5);
  CHECK(s.pointer() == 3);
  std::vector<int64_t> where;
  s.nearest(big, &where);
  for (int64_t i = 2; i < 7; ++i) CHECK(where[size_t(i)] == (3 + i - 2) % 5);  // each row finds itself
}

TEST_CASE("nnclr: bad input is a typed error naming the expectation") {
  CHECK_THROWS_AS(ssl::nnclr(0.0f), ssl::value_error);
  CHECK_THROWS_AS(ssl::nnclr_support_set(0, 4), ssl::value_error);
  const ssl::nnclr loss;
  CHECK_THROWS_WITH(loss(tensor({4, 6}, 1.0f), tensor({4, 5}, 1.0f)), Catch::Contains("neighbours") && Catch::Contains("(4, 5)"));
  CHECK_THROWS_AS(loss(tensor({4}, 1.0f), tensor({4}, 1.0f)), ssl::shape_error);
  ssl::nnclr_support_set s(4, 3);
  CHECK_THROWS_WITH(s.enqueue(tensor({2, 5}, 1.0f)), Catch::Contains("(B, 3)"));
  s.enqueue(tensor({2, 3}, 1.0f));
  CHECK_THROWS_AS(s.nearest(tensor({2, 4}, 1.0f)), ssl::shape_error);
}
