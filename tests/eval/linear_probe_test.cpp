#include <catch2/catch.hpp>
#include <ssl/core/parallel.hpp>
#include <ssl/eval/linear_probe.hpp>
#include <ssl/testing/gradient_check.hpp>
#include <support/fixtures.hpp>

#include "eval_support.hpp"

using ssl::cpu;
using ssl::tensor;

TEST_CASE("linear probe objective and gradient match PyTorch") {
  ssl_test::fixture f("eval/linear_probe.json");
  const auto xtr = f.tensor("probe_train_x");
  const auto y = eval_test::labels(f.tensor("probe_train_y"));
  const auto xs = ssl::eval::standardizer::fit(xtr).apply(xtr);
  tensor<cpu> dw, db;
  const double loss = ssl::eval::logistic_objective(xs, y, f.tensor("obj_w"), f.tensor("obj_b"), 0.1, &dw, &db);
  CHECK(loss == Approx(f.scalar("obj_loss")).epsilon(1e-5));
  CHECK(ssl_test::rel_error(dw, f.tensor("obj_dw")) <= 1e-4);
  CHECK(ssl_test::rel_error(db, f.tensor("obj_db")) <= 1e-4);
}

TEST_CASE("linear probe objective: block size changes only rounding, thread count changes nothing") {
  ssl_test::fixture f("eval/linear_probe.json");
  const auto xtr = f.tensor("probe_train_x");
  const auto y = eval_test::labels(f.tensor("probe_train_y"));
  const auto xs = ssl::eval::standardizer::fit(xtr).apply(xtr);
  const auto w = f.tensor("obj_w"), b = f.tensor("obj_b");
  tensor<cpu> dw1, db1, dw2, db2, dw3, db3;
  ssl::set_num_threads(1);
  const double l1 = ssl::eval::logistic_objective(xs, y, w, b, 0.1, &dw1, &db1, 7);
  ssl::set_num_threads(2);
  const double l2 = ssl::eval::logistic_objective(xs, y, w, b, 0.1, &dw2, &db2, 7);
  const double l3 = ssl::eval::logistic_objective(xs, y, w, b, 0.1, &dw3, &db3, 4096);
  CHECK(l1 == l2);
  CHECK(dw1.to_vector() == dw2.to_vector());
  CHECK(db1.to_vector() == db2.to_vector());
  CHECK(l3 == Approx(l1).epsilon(1e-6));
  CHECK(ssl_test::rel_error(dw3, dw1) <= 1e-5);
  CHECK(l1 == Approx(f.scalar("obj_loss")).epsilon(1e-5));
}

TEST_CASE("linear probe objective passes the finite-difference gradient check") {
  ssl_test::fixture f("eval/linear_probe.json");
  const auto xtr = f.tensor("probe_train_x");
  const auto y = eval_test::labels(f.tensor("probe_train_y"));
  const auto xs = ssl::eval::standardizer::fit(xtr).apply(xtr);
  const auto w = f.tensor("obj_w"), b = f.tensor("obj_b");
  tensor<cpu> dw, db;
  ssl::eval::logistic_objective(xs, y, w, b, 0.1, &dw, &db);
  auto loss = [&](std::vector<tensor<cpu>>& in) { return ssl::eval::logistic_objective(xs, y, in[0], in[1], 0.1); };
  ssl::testing::gradient_check_options o;
  o.eps = 1e-3;
  const auto r = ssl::testing::check_function_gradients(loss, {w, b}, {dw, db}, o);
  INFO(r.report());
  CHECK(r.ok());
}

TEST_CASE("linear probe reproduces torch.optim.LBFGS: early iterates and the solution") {
  ssl_test::fixture f("eval/linear_probe.json");
  const auto xtr = f.tensor("probe_train_x"), xte = f.tensor("probe_test_x");
  const auto ytr = eval_test::labels(f.tensor("probe_train_y")), yte = eval_test::labels(f.tensor("probe_test_y"));
  for (int it : {1, 2, 5}) {
    ssl::eval::linear_probe_options o;
    o.lbfgs.max_iter = it;
    const auto r = ssl::eval::linear_probe(xtr, ytr, xte, yte, o);
    INFO("max_iter " << it);
    CHECK(r.final_loss == Approx(f.scalar("probe_it" + std::to_string(it) + "_loss")).epsilon(1e-5));
  }
  const auto r = ssl::eval::linear_probe(xtr, ytr, xte, yte);
  CHECK(r.final_loss == Approx(f.scalar("probe_loss")).epsilon(1e-4));
  CHECK(ssl_test::rel_error(r.model.weight, f.tensor("probe_w")) <= 1e-3);
  CHECK(ssl_test::rel_error(r.model.bias, f.tensor("probe_b")) <= 1e-3);
  CHECK(r.train_accuracy == Approx(f.scalar("probe_train_acc")));
  CHECK(r.test_accuracy == Approx(f.scalar("probe_test_acc")));
  CHECK(r.optimizer.iterations < 500);
}

TEST_CASE("linear probe rejects inconsistent input") {
  const auto x = eval_test::randn(20, 3, 1);
  const std::vector<int> y(20, 1);
  CHECK_THROWS_WITH(ssl::eval::linear_probe(x, y, eval_test::randn(5, 4, 2), std::vector<int>(5, 0)),
                    Catch::Contains("dimension 3") && Catch::Contains("have 4"));
  CHECK_THROWS_AS(ssl::eval::linear_probe(x, std::vector<int>(19, 0), x, y), ssl::shape_error);
  std::vector<int> bad(20, 0);
  bad[3] = 7;
  ssl::eval::linear_probe_options o;
  o.num_classes = 3;
  CHECK_THROWS_WITH(ssl::eval::linear_probe(x, bad, x, y, o), Catch::Contains("[0, 3)") && Catch::Contains("found 7"));
}
