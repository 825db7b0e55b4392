#include <catch2/catch.hpp>
#include <cmath>
#include <ssl/eval/lbfgs.hpp>
#include <support/fixtures.hpp>
#include <string>

// Extended Rosenbrock: sum_i 100 (x_{2i+1} - x_{2i}^2)^2 + (1 - x_{2i})^2
static double rosenbrock(const std::vector<double>& x, std::vector<double>& g) {
  double f = 0;
  for (size_t i = 0; i + 1 < x.size(); i += 2) {
    const double a = x[i], b = x[i + 1], r = b - a * a;
    f += 100 * r * r + (1 - a) * (1 - a);
    g[i] = -400 * r * a - 2 * (1 - a);
    g[i + 1] = 200 * r;
  }
  return f;
}

TEST_CASE("lbfgs follows torch.optim.LBFGS (strong Wolfe) step for step on Rosenbrock") {
  ssl_test::fixture f("eval/lbfgs.json");
  const auto x0 = f.tensor("rosen_x0");
  for (int max_iter : {1, 4, 12, 40}) {  // 40 stops early at 39 (|f_k - f_k-1| < tolerance)
    const std::string tag = "rosen_it" + std::to_string(max_iter);
    std::vector<double> x(x0.data(), x0.data() + x0.numel());
    ssl::eval::lbfgs_options o;
    o.max_iter = max_iter;
    o.history = 3;
    o.tolerance_grad = 1e-10;
    o.tolerance_change = 1e-14;
    const auto r = ssl::eval::lbfgs_minimize(rosenbrock, x, o);
    INFO(tag);
    CHECK(r.iterations == int(f.scalar(tag + "_iters")));
    CHECK(r.evaluations == int(f.scalar(tag + "_evals")));
    ssl::tensor<ssl::cpu> xt(x0.shape());
    for (int64_t i = 0; i < xt.numel(); ++i) xt[i] = float(x[size_t(i)]);
    CHECK(ssl_test::rel_error(xt, f.tensor(tag + "_x")) <= 1e-5);
    std::vector<double> g(x.size());
    CHECK(rosenbrock(x, g) == Approx(f.scalar(tag + "_f")).epsilon(1e-5).margin(1e-9));
  }
}

TEST_CASE("lbfgs converges on Rosenbrock (later iterates are chaotic in the last bits, so only the end point)") {
  std::vector<double> x = {-1.5, 2.0, -1.2, 1.0, 0.5, -0.3}, g(6);
  ssl::eval::lbfgs_options o;
  o.max_iter = 300;
  o.tolerance_grad = 1e-10;
  o.tolerance_change = 1e-14;
  ssl::eval::lbfgs_minimize(rosenbrock, x, o);
  CHECK(rosenbrock(x, g) < 1e-10);
  for (double v : x) CHECK(v == Approx(1.0).epsilon(1e-4));
}

TEST_CASE("lbfgs stops at once at a stationary point and rejects bad options") {
  std::vector<double> x = {1, 1};
  const auto r = ssl::eval::lbfgs_minimize(rosenbrock, x);
  CHECK(r.iterations == 0);
  CHECK(r.evaluations == 1);
  ssl::eval::lbfgs_options o;
  o.history = 0;
  CHECK_THROWS_WITH(ssl::eval::lbfgs_minimize(rosenbrock, x, o), Catch::Contains("history") && Catch::Contains("got 0"));
  auto nan_fn = [](const std::vector<double>&, std::vector<double>& g) {
    g.assign(g.size(), 1.0);
    return std::nan("");
  };
  CHECK_THROWS_AS(ssl::eval::lbfgs_minimize(nan_fn, x), ssl::numeric_error);
}
