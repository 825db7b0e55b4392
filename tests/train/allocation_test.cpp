// No allocation from the system inside the training step in steady state: after the first
// steps, every large tensor a step needs is served from the host allocator's cache.
#include <catch2/catch.hpp>
#include <ssl/encoders/convnet_s.hpp>
#include <ssl/heads/projection_mlp.hpp>
#include <ssl/methods/simclr.hpp>
#include <ssl/optim/sgd.hpp>

using namespace ssl;

TEST_CASE("a SimCLR step on ConvNet-S makes no system allocation in steady state") {
  simclr method(convnet_s<>(1, rng(0)), projection_mlp<>({.in_dim = 256, .hidden_dim = 64, .out_dim = 32}, rng(1)));
  param_list<cpu> params;
  method.collect(params, "");
  sgd opt(params, {.lr = 0.01f, .momentum = 0.9f});
  std::vector<tensor<cpu>> views(2, tensor<cpu>(shape{16, 1, 28, 28}));
  rng g(3);
  for (auto& v : views)
    for (int64_t i = 0; i < v.numel(); ++i) v[i] = g.uniform();
  auto step = [&] {
    opt.zero_grad();
    method.train_step(views);
    opt.step();
  };
  step();
  step();
  const uint64_t before = host_system_allocations();
  CHECK(before > 0);  // the counter does count: the first steps did allocate
  for (int i = 0; i < 3; ++i) step();
  CHECK(host_system_allocations() == before);
}
