#include <catch2/catch.hpp>
#include <ssl/core/rng.hpp>
#include <ssl/optim.hpp>

#include "optim_problem.hpp"

using namespace optim_test;
using Catch::Matchers::Contains;

TEST_CASE("load_state_dict names missing, misshapen and unexpected entries") {
  problem pb;
  ssl::sgd opt(pb.params(), {.lr = 0.1f, .momentum = 0.9f});
  auto good = opt.state_dict();
  REQUIRE(good.size() == 5);
  CHECK(good[1].first == "layer.weight.momentum_buffer");

  auto missing = good;
  missing.erase(missing.begin() + 2);
  CHECK_THROWS_WITH(opt.load_state_dict(missing), Contains("missing entry 'layer.bias.momentum_buffer'"));

  auto misshapen = good;
  misshapen[1].second = ssl::tensor<ssl::cpu>::zeros({3, 4});
  CHECK_THROWS_AS(opt.load_state_dict(misshapen), ssl::shape_error);
  CHECK_THROWS_WITH(opt.load_state_dict(misshapen), Contains("expected shape (4, 3), got (3, 4)"));

  auto extra = good;
  extra.emplace_back("head.weight.momentum_buffer", ssl::tensor<ssl::cpu>::zeros({2}));
  CHECK_THROWS_WITH(opt.load_state_dict(extra), Contains("unexpected entry 'head.weight.momentum_buffer'"));

  auto dup = good;
  dup.push_back(good[1]);
  CHECK_THROWS_WITH(opt.load_state_dict(dup), Contains("duplicate entry"));
}

TEST_CASE("optimizers reject bad hyper-parameters and inconsistent parameters") {
  problem pb;
  CHECK_THROWS_AS(ssl::sgd(pb.params(), {.lr = -1.0f}), ssl::value_error);
  CHECK_THROWS_WITH(ssl::sgd(pb.params(), {.lr = 0.1f, .nesterov = true}), Contains("nesterov needs momentum"));
  CHECK_THROWS_WITH(ssl::adamw(pb.params(), {.beta2 = 1.0f}), Contains("beta2 must be in [0, 1), got 1"));
  CHECK_THROWS_WITH(ssl::lars(pb.params(), {.eta = 0.0f}), Contains("eta must be > 0"));
  auto pl = pb.params();
  pl.push_back(pl[0]);
  CHECK_THROWS_WITH(ssl::sgd(pl), Contains("duplicate parameter name 'layer.weight'"));
  pb.storage[1]->grad = ssl::tensor<ssl::cpu>::zeros({5});
  CHECK_THROWS_AS(ssl::sgd(pb.params()), ssl::shape_error);
}

TEST_CASE("frozen parameters are not updated and group scales apply") {
  problem pb;
  pb.storage[0]->frozen = true;
  const auto w0 = pb.storage[0]->value;
  const auto b0 = pb.storage[1]->value;
  const auto n0 = pb.storage[2]->value;
  ssl::sgd opt(pb.params(), {.lr = 0.1f}, {ssl::lr_scale_for_prefix("norm.", 0.0f)});
  pb.set_grads(0);
  opt.step();
  CHECK(ssl_test::rel_error(pb.storage[0]->value, w0) == 0.0);
  CHECK(ssl_test::rel_error(pb.storage[2]->value, n0) == 0.0);  // lr scale 0
  // plain SGD: b = b0 - lr * g
  for (int64_t j = 0; j < b0.numel(); ++j)
    CHECK(pb.storage[1]->value[j] == Approx(b0[j] - 0.1f * pb.storage[1]->grad[j]).epsilon(1e-6));
  CHECK(opt.lr_of(2) == 0.0f);
  CHECK(opt.lr_of(1) == Approx(0.1f));
}

TEST_CASE("lars updates of large tensors do not depend on the thread count") {
  auto run = [](int threads) {
    ssl::set_num_threads(threads);
    ssl::parameter<ssl::cpu> p({300, 257});
    ssl::rng g(3);
    for (int64_t j = 0; j < p.value.numel(); ++j) {
      p.value[j] = g.normal();
      p.grad[j] = g.normal();
    }
    ssl::lars opt({{"w", &p}}, {.lr = 0.5f});
    opt.step();
    opt.step();
    return p.value.to_vector();
  };
  const auto one = run(1), two = run(2);
  ssl::set_num_threads(2);
  CHECK(one == two);
}
