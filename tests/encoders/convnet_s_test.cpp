#include <catch2/catch.hpp>
#include <cstdint>
#include <ssl/encoders/convnet_s.hpp>
#include <ssl/testing/gradient_check.hpp>
#include <string>
#include <support/fixtures.hpp>

using ssl::shape;
using T = ssl::tensor<ssl::cpu>;

static_assert(ssl::Encoder<ssl::convnet_s<>>);

namespace {
T random_tensor(const shape& s, uint64_t seed, float scale = 1.0f) {
  ssl::rng g(seed);
  T t(s);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = scale * g.normal();
  return t;
}

// The fixture's conv weights (too many to store): ((i * 7919 + 104729 * layer) mod 257 - 128) / 128 * scale.
T hashed_weights(const shape& s, int64_t layer, float scale) {
  T t(s);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = float(((i * 7919 + 104729 * layer) % 257) - 128) / 128.0f * scale;
  return t;
}

// Every parameter gradient of the network, concatenated in collect order.
std::vector<float> flat_grads(ssl::convnet_s<>& net) {
  std::vector<float> g;
  for (auto& pr : ssl::parameters(net))
    for (float v : pr.p->grad.to_vector()) g.push_back(v);
  return g;
}

// Every 97th entry of a flat tensor (as the fixture stores large gradients).
T every97(const T& t) {
  std::vector<float> v;
  for (int64_t i = 0; i < t.numel(); i += 97) v.push_back(t[i]);
  return T::from(shape{int64_t(v.size())}, v);
}
}  // namespace

TEST_CASE("convnet_s has WORKLOADS.md's 388,320 parameters and 256 features") {
  ssl_test::fixture fx("nn/conv_convnet_s.json");
  ssl::convnet_s<> net;
  CHECK(ssl::parameter_count(net) == 388320);
  CHECK(ssl::parameter_count(net) == int64_t(fx.scalar("param_count")));
  CHECK(net.feature_dim() == 256);
  auto params = ssl::parameters(net);
  REQUIRE(params.size() == 12);
  CHECK(params[0].name == "0.weight");
  CHECK(params[0].p->value.shape() == shape{32, 1, 3, 3});
  CHECK(params[1].name == "1.weight");
  CHECK(params[11].name == "10.bias");
  CHECK(params[9].p->value.shape() == shape{256, 128, 3, 3});
  std::vector<std::pair<std::string, T*>> buffers;
  net.collect_buffers(buffers, "enc");
  REQUIRE(buffers.size() == 12);
  CHECK(buffers[0].first == "enc.1.running_mean");
  CHECK(buffers[11].first == "enc.10.num_batches_tracked");
}

TEST_CASE("convnet_s matches PyTorch on a (2, 1, 28, 28) input given the same weights") {
  ssl_test::fixture fx("nn/conv_convnet_s.json");
  ssl::convnet_s<> net;
  const float scales[4] = {0.25f, 1.0f / 16, 1.0f / 32, 1.0f / 32};
  for (int i = 0; i < 4; ++i) {
    auto& w = net.conv(i).weight().value;
    w = hashed_weights(w.shape(), i, scales[i]);
    CHECK(w.vec().sum() == Approx(fx.scalar("conv" + std::to_string(i) + ".weight_sum")).margin(1e-3));
    net.bn(i).weight().value = fx.tensor("bn" + std::to_string(i) + ".weight");
    net.bn(i).bias().value = fx.tensor("bn" + std::to_string(i) + ".bias");
  }
  const T x = fx.tensor("x");
  auto [y, saved] = net.forward(x);
  CHECK(y.shape() == shape{2, 256});
  CHECK(ssl_test::rel_error(y, fx.tensor("y")) <= 1e-4);
  const T dx = net.backward(saved, fx.tensor("dy"));
  CHECK(ssl_test::rel_error(dx, fx.tensor("dx")) <= 1e-4);
  CHECK(ssl_test::rel_error(net.conv(0).weight().grad, fx.tensor("conv0.dweight")) <= 1e-4);
  for (int i = 0; i < 4; ++i) {
    const std::string n = std::to_string(i);
    INFO("stage " << i);
    CHECK(ssl_test::rel_error(every97(net.conv(i).weight().grad), fx.tensor("conv" + n + ".dweight_every97")) <= 1e-4);
    CHECK(ssl_test::rel_error(net.bn(i).weight().grad, fx.tensor("bn" + n + ".dweight")) <= 1e-4);
    CHECK(ssl_test::rel_error(net.bn(i).bias().grad, fx.tensor("bn" + n + ".dbias")) <= 1e-4);
  }
  CHECK(ssl_test::rel_error(net.bn(3).running_mean(), fx.tensor("bn3.running_mean")) <= 1e-4);
  CHECK(ssl_test::rel_error(net.bn(3).running_var(), fx.tensor("bn3.running_var")) <= 1e-4);
  CHECK(ssl_test::rel_error(net.infer(x), fx.tensor("y_eval")) <= 1e-4);
}

TEST_CASE("convnet_s gradients pass the finite-difference check on a small input") {
  ssl::convnet_s<> net(1, ssl::rng(3));
  // BN shifts of +1 keep most ReLU inputs away from their kink (see basic_block_test.cpp)
  for (auto& pr : ssl::parameters(net))
    if (pr.p->kind == ssl::param_kind::norm && pr.name.ends_with("bias")) pr.p->value.fill(3.0f);
  ssl::testing::gradient_check_options o;
  o.max_checks = 8;
  // float32 forward through four batch norms: the central difference carries ~1e-2 of rounding
  // noise (the exact gradients are checked against PyTorch at 1e-4 above); wrong terms give O(1) errors
  o.eps = 3e-3;
  o.atol = 2e-2;
  o.rtol = 5e-2;
  auto r = ssl::testing::check_module_gradients(net, random_tensor(shape{4, 1, 20, 20}, 4), o);
  INFO(r.report());
  CHECK(r.ok());
}

TEST_CASE("convnet_s runs on 28x28 and 12x12 crops and accumulates both backward passes") {
  ssl::convnet_s<> net(1, ssl::rng(5));
  const T big = random_tensor(shape{4, 1, 28, 28}, 6), small = random_tensor(shape{4, 1, 12, 12}, 7);
  auto ob = net.forward(big);
  auto os = net.forward(small);
  REQUIRE(ob.y.shape() == shape{4, 256});
  REQUIRE(os.y.shape() == shape{4, 256});
  CHECK(net.infer(small).shape() == shape{4, 256});
  const T dyb = random_tensor(ob.y.shape(), 8), dys = random_tensor(os.y.shape(), 9);
  auto grads = [&] { return flat_grads(net); };
  ssl::zero_grad(net);
  net.backward(ob.saved, dyb);
  const auto g_big = grads();
  ssl::zero_grad(net);
  const T dx_small = net.backward(os.saved, dys);
  const auto g_small = grads();
  CHECK(dx_small.shape() == small.shape());
  ssl::zero_grad(net);
  net.backward(os.saved, dys);  // reverse order: saved states are independent of each other
  net.backward(ob.saved, dyb);
  const auto g_both = grads();
  REQUIRE(g_both.size() == 388320u);
  double err = 0, norm_small = 0;
  for (size_t i = 0; i < g_both.size(); ++i) {
    err = std::max(err, double(std::abs(g_both[i] - (g_big[i] + g_small[i]))));
    norm_small += std::abs(g_small[i]);
  }
  CHECK(err <= 1e-4);
  CHECK(norm_small > 0);
}

TEST_CASE("convnet_s BN recalibration: reset, cumulative momentum, eval uses the new statistics") {
  ssl::convnet_s<> net(1, ssl::rng(1));
  const T x = random_tensor(shape{8, 1, 12, 12}, 2, 2.0f);
  const T before = net.infer(x);
  ssl::set_batch_norm_momentum(net, std::nullopt);
  ssl::reset_running_stats(net);
  const T train_y = net.forward(x).y;
  CHECK(net.bn(0).num_batches_tracked() == 1);
  // one batch with a cumulative average: the running stats are that batch's statistics, so the
  // eval output is the train-mode output up to the unbiased-variance factor M / (M - 1)
  const T after = net.infer(x);
  INFO("before " << ssl_test::rel_error(before, train_y) << ", after " << ssl_test::rel_error(after, train_y));
  CHECK(ssl_test::rel_error(after, train_y) < 0.05);
  CHECK(ssl_test::rel_error(before, train_y) > 0.2);
}

TEST_CASE("convnet_s rejects inputs with the wrong channel count") {
  ssl::convnet_s<> net;
  CHECK_THROWS_AS(net.forward(T(shape{2, 3, 28, 28}, 0.0f)), ssl::shape_error);
  CHECK_THROWS_WITH(net.infer(T(shape{2, 3, 28, 28}, 0.0f)),
                    Catch::Matchers::Contains("(N, 1, H, W)") && Catch::Matchers::Contains("(2, 3, 28, 28)"));
  CHECK_THROWS_AS(net.infer(T(shape{2, 784}, 0.0f)), ssl::shape_error);
}

TEST_CASE("convnet_s backward(std::move(saved)) gives the same gradients and releases the saved activations") {
  ssl::convnet_s<> net(1, ssl::rng(11));
  const T x = random_tensor(shape{3, 1, 28, 28}, 12);
  auto out = net.forward(x);
  const T dy = random_tensor(out.y.shape(), 13);
  auto grads = [&] { return flat_grads(net); };
  ssl::zero_grad(net);
  const T dx_kept = net.backward(out.saved, dy);
  const auto g_kept = grads();
  ssl::zero_grad(net);
  const T dx_moved = net.backward(std::move(out.saved), dy);
  const auto g_moved = grads();
  REQUIRE(g_moved.size() == g_kept.size());
  for (size_t i = 0; i < g_kept.size(); ++i) REQUIRE(g_moved[i] == g_kept[i]);
  REQUIRE(dx_moved.numel() == dx_kept.numel());
  for (int64_t i = 0; i < dx_kept.numel(); ++i) REQUIRE(dx_moved[i] == dx_kept[i]);
  for (int i = 0; i < ssl::convnet_s<>::stages; ++i) {
    CHECK(out.saved.conv[size_t(i)].x.data() == nullptr);  // released stage by stage
    CHECK(out.saved.bn[size_t(i)].x.data() == nullptr);
  }

  // backward_params: the same parameter gradients, no input gradient, saved state consumed too
  auto again = net.forward(x);
  ssl::zero_grad(net);
  net.backward_params(std::move(again.saved), dy);
  const auto g_params = grads();
  REQUIRE(g_params.size() == g_kept.size());
  for (size_t i = 0; i < g_kept.size(); ++i) REQUIRE(g_params[i] == g_kept[i]);
  CHECK(again.saved.conv[0].x.data() == nullptr);
}
