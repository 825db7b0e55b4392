#pragma once
// The fixed problem of scripts/fixtures/optim.py: four parameters (weights, a bias, a norm
// scale) and five steps of gradients, with a learning rate per step.
#include <memory>
#include <ssl/optim.hpp>
#include <string>
#include <vector>

#include "support/fixtures.hpp"

namespace optim_test {

struct problem {
  static constexpr int steps = 5;
  ssl_test::fixture fx{"optim/problem.json"};
  std::vector<std::string> names{"layer.weight", "layer.bias", "norm.weight", "conv.weight"};
  std::vector<ssl::param_kind> kinds{ssl::param_kind::weight, ssl::param_kind::bias, ssl::param_kind::norm,
                                     ssl::param_kind::weight};
  std::vector<std::unique_ptr<ssl::parameter<ssl::cpu>>> storage;

  problem() {
    for (size_t i = 0; i < names.size(); ++i) {
      auto init = fx.tensor(names[i]);
      storage.push_back(std::make_unique<ssl::parameter<ssl::cpu>>(init.shape(), kinds[i]));
      storage.back()->value = init;
    }
  }
  ssl::param_list<ssl::cpu> params() {
    ssl::param_list<ssl::cpu> pl;
    for (size_t i = 0; i < names.size(); ++i) pl.push_back({names[i], storage[i].get()});
    return pl;
  }
  float lr(int t) const { return fx.tensor("lrs")[t]; }
  /// Loads the gradient of step t into every parameter.
  void set_grads(int t) {
    for (size_t i = 0; i < names.size(); ++i) {
      auto all = fx.tensor(names[i] + ".grads");
      auto& g = storage[i]->grad;
      std::copy(all.data() + t * g.numel(), all.data() + (t + 1) * g.numel(), g.data());
    }
  }
  /// Largest relative error of the update (value - initial value) against the fixture after step t.
  double update_error(const ssl_test::fixture& expected, int t) const {
    double worst = 0;
    for (size_t i = 0; i < names.size(); ++i) {
      const auto init = fx.tensor(names[i]);
      const auto all = expected.tensor(names[i] + ".values");
      ssl::tensor<ssl::cpu> want(init.shape()), got(init.shape());
      for (int64_t j = 0; j < init.numel(); ++j) {
        want[j] = float(double(all[t * init.numel() + j]) - init[j]);
        got[j] = float(double(storage[i]->value[j]) - init[j]);
      }
      worst = std::max(worst, ssl_test::rel_error(got, want));
    }
    return worst;
  }
};

/// Runs all steps with lr = lrs[t] * lr_scale and checks each step's update against the fixture.
template <class Opt>
void check_trajectory(problem& pb, Opt& opt, const std::string& fixture, float lr_scale, int first_step = 0) {
  ssl_test::fixture expected("optim/" + fixture);
  for (int t = first_step; t < problem::steps; ++t) {
    pb.set_grads(t);
    opt.set_lr(pb.lr(t) * lr_scale);
    opt.step();
    INFO(fixture << " step " << t);
    CHECK(pb.update_error(expected, t) <= 1e-4);
  }
}

}  // namespace optim_test
