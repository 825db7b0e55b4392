#include <catch2/catch.hpp>
#include <ssl/optim.hpp>

#include "optim_problem.hpp"

using namespace optim_test;

static_assert(ssl::Optimizer<ssl::sgd<>>);
static_assert(ssl::Optimizer<ssl::adamw<>>);
static_assert(ssl::Optimizer<ssl::lars<>>);

TEST_CASE("sgd with momentum matches torch.optim.SGD") {
  problem pb;
  ssl::sgd opt(pb.params(), {.lr = 0.1f, .momentum = 0.9f, .weight_decay = 1e-2f});
  check_trajectory(pb, opt, "sgd_momentum.json", 1.0f);
}

TEST_CASE("sgd without momentum matches torch.optim.SGD") {
  problem pb;
  ssl::sgd opt(pb.params(), {.lr = 0.1f, .weight_decay = 1e-2f});
  check_trajectory(pb, opt, "sgd_plain.json", 1.0f);
}

TEST_CASE("sgd nesterov with a no-decay group for biases and norms matches torch") {
  problem pb;
  ssl::sgd opt(pb.params(), {.lr = 0.1f, .momentum = 0.9f, .weight_decay = 5e-2f, .nesterov = true},
               {ssl::no_decay_on_bias_and_norm()});
  check_trajectory(pb, opt, "sgd_nesterov_groups.json", 1.0f);
}

TEST_CASE("adamw matches torch.optim.AdamW") {
  problem pb;
  ssl::adamw opt(pb.params(), {.lr = 0.01f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.05f});
  check_trajectory(pb, opt, "adamw.json", 0.1f);
}

TEST_CASE("adamw with a no-decay group matches torch.optim.AdamW") {
  problem pb;
  ssl::adamw opt(pb.params(), {.lr = 0.01f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-6f, .weight_decay = 0.3f},
                 {ssl::no_decay_on_bias_and_norm()});
  check_trajectory(pb, opt, "adamw_groups.json", 0.1f);
}

TEST_CASE("lars matches the SimCLR reference") {
  problem pb;
  ssl::lars opt(pb.params(), {.lr = 1.0f, .momentum = 0.9f, .weight_decay = 1e-2f, .eta = 0.02f});
  check_trajectory(pb, opt, "lars.json", 10.0f);
  // biases and norms are not adapted
  CHECK(opt.trust_ratios()[1] == 1.0f);
  CHECK(opt.trust_ratios()[2] == 1.0f);
  CHECK(opt.trust_ratios()[0] != 1.0f);
}

TEST_CASE("lars with nesterov matches the SimCLR reference") {
  problem pb;
  ssl::lars opt(pb.params(), {.lr = 1.0f, .momentum = 0.9f, .weight_decay = 1e-2f, .eta = 0.02f, .nesterov = true});
  check_trajectory(pb, opt, "lars_nesterov.json", 10.0f);
}

TEST_CASE("optimizer state survives a state_dict round trip mid-trajectory") {
  problem pb;
  ssl::adamw first(pb.params(), {.lr = 0.01f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.05f});
  for (int t = 0; t < 2; ++t) {
    pb.set_grads(t);
    first.set_lr(pb.lr(t) * 0.1f);
    first.step();
  }
  const ssl::named_tensors state = first.state_dict();
  CHECK(state.size() == 1 + 2 * 4);
  ssl::adamw resumed(pb.params(), {.lr = 0.01f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.05f});
  resumed.load_state_dict(state);
  CHECK(resumed.step_count() == 2);
  check_trajectory(pb, resumed, "adamw.json", 0.1f, 2);
}
