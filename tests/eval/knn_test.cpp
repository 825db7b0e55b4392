#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <numeric>
#include <ssl/core/parallel.hpp>
#include <ssl/eval/knn.hpp>
#include <support/fixtures.hpp>

#include "eval_support.hpp"

using ssl::tensor;
using ssl::cpu;
using ssl::shape;

TEST_CASE("knn: hand-checkable 2-D problem") {
  // train points on the unit circle's axes (with different norms: cosine ignores them)
  const auto train = tensor<cpu>::from(shape{4, 2}, {1, 0, 3, 0.2f, 0, 2, -1, 0});
  const std::vector<int> ytr = {0, 0, 1, 2};
  const auto test = tensor<cpu>::from(shape{3, 2}, {5, 0.1f, 0.1f, 1, -2, -0.1f});
  ssl::eval::knn_options o;
  o.k = 1;
  auto r = ssl::eval::knn_classify(train, ytr, test, std::vector<int>{0, 1, 0}, o);
  CHECK(r.predictions == std::vector<int>{0, 1, 2});
  CHECK(r.accuracy == Approx(2.0 / 3.0));
  // k = 3: the query (0.1, 1) has neighbours 2 (class 1, sim ~0.995) and 1, 0 (class 0, sims ~0.16, ~0.10):
  // the single close vote outweighs the two far ones because of exp(sim / 0.07)
  o.k = 3;
  r = ssl::eval::knn_classify(train, ytr, test, {}, o);
  CHECK(r.predictions[1] == 1);
  // with a huge temperature the votes become counts: two class-0 neighbours win
  o.temperature = 1e6f;
  r = ssl::eval::knn_classify(train, ytr, test, {}, o);
  CHECK(r.predictions[1] == 0);
}

TEST_CASE("knn: ties go to the lower train index, then the lower class") {
  // three identical train rows with classes 2, 1, 0; k = 1 picks index 0 (class 2)
  const auto train = tensor<cpu>::from(shape{3, 2}, {1, 1, 1, 1, 1, 1});
  const auto test = tensor<cpu>::from(shape{1, 2}, {2, 2});
  ssl::eval::knn_options o;
  o.k = 1;
  CHECK(ssl::eval::knn_classify(train, std::vector<int>{2, 1, 0}, test, {}, o).predictions[0] == 2);
  // k = 2: classes 2 and 1 tie on votes; the lower class (1) wins
  o.k = 2;
  CHECK(ssl::eval::knn_classify(train, std::vector<int>{2, 1, 0}, test, {}, o).predictions[0] == 1);
}

// Brute force: full similarity, std::sort by (sim desc, index asc), double-precision votes.
static std::vector<int> brute_force_knn(const tensor<cpu>& tr, const std::vector<int>& ytr, const tensor<cpu>& te,
                                        int k, double T, int classes) {
  const int64_t n = tr.dim(0), m = te.dim(0), d = tr.dim(1);
  auto norm = [&](const tensor<cpu>& x, int64_t i) {
    double s = 0;
    for (int64_t j = 0; j < d; ++j) s += double(x[i * d + j]) * x[i * d + j];
    return std::sqrt(s);
  };
  std::vector<int> pred(static_cast<size_t>(m));
  for (int64_t q = 0; q < m; ++q) {
    std::vector<std::pair<double, int64_t>> s(static_cast<size_t>(n));
    for (int64_t t = 0; t < n; ++t) {
      double dot = 0;
      for (int64_t j = 0; j < d; ++j) dot += double(te[q * d + j]) * tr[t * d + j];
      s[size_t(t)] = {dot / (norm(te, q) * norm(tr, t)), t};
    }
    std::partial_sort(s.begin(), s.begin() + k, s.end(),
                      [](auto& a, auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
    std::vector<double> votes(size_t(classes), 0.0);
    for (int u = 0; u < k; ++u) votes[size_t(ytr[size_t(s[size_t(u)].second)])] += std::exp(s[size_t(u)].first / T);
    pred[size_t(q)] = int(std::max_element(votes.begin(), votes.end()) - votes.begin());
  }
  return pred;
}

TEST_CASE("knn: matches brute force on random data, for every chunk and tile size") {
  const auto train = eval_test::randn(517, 24, 1), test = eval_test::randn(133, 24, 2);
  std::vector<int> ytr(517);
  ssl::rng g(3);
  for (auto& y : ytr) y = int(g.below(7));
  const auto expected = brute_force_knn(train, ytr, test, 20, 0.07, 7);
  for (auto [chunk, tile] : {std::pair<int64_t, int64_t>{1, 1024}, {50, 7}, {133, 100}, {1000, 517}, {64, 1}}) {
    ssl::eval::knn_options o;
    o.chunk = chunk;
    o.train_tile = tile;
    INFO("chunk " << chunk << ", train tile " << tile);
    const auto r = ssl::eval::knn_classify(train, ytr, test, {}, o);
    int agree = 0;
    for (size_t i = 0; i < expected.size(); ++i) agree += r.predictions[i] == expected[i];
    CHECK(agree == int(expected.size()));
  }
}

TEST_CASE("knn: many test rows (several parallel row blocks per chunk), any thread count") {
  const auto train = eval_test::randn(64, 8, 4), test = eval_test::randn(1100, 8, 5);
  std::vector<int> ytr(64);
  for (size_t i = 0; i < ytr.size(); ++i) ytr[i] = int(i % 3);
  const auto expected = brute_force_knn(train, ytr, test, 5, 0.07, 3);
  ssl::eval::knn_options o;
  o.k = 5;
  o.train_tile = 24;
  ssl::set_num_threads(1);
  const auto one = ssl::eval::knn_classify(train, ytr, test, {}, o);
  ssl::set_num_threads(2);
  const auto two = ssl::eval::knn_classify(train, ytr, test, {}, o);
  CHECK(one.predictions == two.predictions);
  CHECK(two.predictions == expected);
}

TEST_CASE("knn: matches the PyTorch W5 definition (topk + scatter_add)") {
  ssl_test::fixture f("eval/knn.json");
  ssl::eval::knn_options o;
  o.k = int(f.scalar("knn_k"));
  o.chunk = 16;
  const auto r = ssl::eval::knn_classify(f.tensor("knn_train"), eval_test::labels(f.tensor("knn_train_y")),
                                         f.tensor("knn_test"), eval_test::labels(f.tensor("knn_test_y")), o);
  CHECK(r.predictions == eval_test::labels(f.tensor("knn_pred")));
  CHECK(r.accuracy == Approx(f.scalar("knn_acc")).epsilon(1e-6));
}

TEST_CASE("knn: bad input throws typed errors naming the problem") {
  const auto train = eval_test::randn(10, 4, 1), test = eval_test::randn(3, 4, 2);
  const std::vector<int> y(10, 1);
  CHECK_THROWS_AS(ssl::eval::knn_classify(train, y, eval_test::randn(3, 5, 2)), ssl::shape_error);
  CHECK_THROWS_WITH(ssl::eval::knn_classify(train, y, eval_test::randn(3, 5, 2)),
                    Catch::Contains("dimension 4") && Catch::Contains("have 5"));
  CHECK_THROWS_AS(ssl::eval::knn_classify(train, std::vector<int>(9, 0), test), ssl::shape_error);
  ssl::eval::knn_options o;
  o.k = 11;
  CHECK_THROWS_WITH(ssl::eval::knn_classify(train, y, test, {}, o), Catch::Contains("got 11"));
  o.k = 5;
  o.temperature = 0;
  CHECK_THROWS_AS(ssl::eval::knn_classify(train, y, test, {}, o), ssl::value_error);
  o.temperature = 0.07f;
  o.train_tile = 0;
  CHECK_THROWS_WITH(ssl::eval::knn_classify(train, y, test, {}, o), Catch::Contains("train_tile"));
  o.train_tile = 1024;
  std::vector<int> bad = y;
  bad[4] = -1;
  CHECK_THROWS_WITH(ssl::eval::knn_classify(train, bad, test, {}, o), Catch::Contains("found -1 at index 4"));
  // a NaN or an infinity in a feature row: numeric_error naming the row and the set
  tensor<cpu> nan_train = train, inf_test = test;
  nan_train[7 * 4 + 2] = NAN;
  inf_test[4 + 1] = INFINITY;
  CHECK_THROWS_AS(ssl::eval::knn_classify(nan_train, y, test, {}, o), ssl::numeric_error);
  CHECK_THROWS_WITH(ssl::eval::knn_classify(nan_train, y, test, {}, o), Catch::Contains("row 7 of the train features"));
  CHECK_THROWS_WITH(ssl::eval::knn_classify(train, y, inf_test, {}, o), Catch::Contains("row 1 of the test features"));
}
