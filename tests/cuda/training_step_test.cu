// A full SimCLR training step (W1's model at a small batch) gives the same loss, gradients
// and updated parameters on both backends; the model code is the same, only B differs.
#include <ssl/backend/cuda/parity/convnet_simclr.cuh>
#include <ssl/encoders/convnet_s.hpp>
#include <ssl/heads/projection_mlp.hpp>
#include <ssl/methods/simclr.hpp>
#include <support/fixtures.hpp>

#include "cuda_test.cuh"

using namespace ssl;
using ssl_cuda_test::random;
using ssl_cuda_test::rel_diff;

namespace {
double max_abs(const tensor<cpu>& t) {
  double m = 0;
  for (int64_t i = 0; i < t.numel(); ++i) m = std::max(m, double(std::abs(t[i])));
  return m;
}
}  // namespace

TEST_CASE("cuda: SimCLR step (ConvNet-S + head + NT-Xent + SGD) matches the CPU step") {
  SSL_REQUIRE_CUDA_DEVICE();
  parity::convnet_simclr<cpu> host_model(42);
  parity::convnet_simclr<cuda> dev_model(42);
  for (int step = 0; step < 2; ++step) {
    INFO("step " << step);
    const tensor<cpu> x = random(shape{16, 1, 28, 28}, 100 + step, 0.0f, 1.0f);
    const float loss = host_model.forward_backward(x);
    const float dev_loss = to_host_scalar(dev_model.forward_backward(to_device(x)));
    CHECK(std::abs(dev_loss - loss) <= 1e-4f * std::abs(loss));
    using model_t = parity::convnet_simclr<cpu>;
    for (int i = 0; i < model_t::param_count; ++i) {
      INFO("parameter " << i);
      if (i == model_t::head_b1) continue;  // checked below: its exact gradient is zero
      CHECK(rel_diff(dev_model.param(i).grad, host_model.param(i).grad) < 2e-3);
    }
    // The bias of Linear(256,256) feeds BatchNorm1d, which removes any constant shift: its exact
    // gradient is 0, and both backends hold only rounding noise there. Both must be that small
    // against the gradient of the weight beside it (a relative comparison of two noises is moot).
    const double w_scale = max_abs(host_model.param(model_t::head_w1).grad);
    CHECK(max_abs(host_model.param(model_t::head_b1).grad) < 1e-4 * w_scale);
    CHECK(max_abs(to_host(dev_model.param(model_t::head_b1).grad)) < 1e-4 * w_scale);
    host_model.update();
    dev_model.update();
    for (int i = 0; i < parity::convnet_simclr<cpu>::param_count; ++i) {
      INFO("parameter " << i);
      CHECK(rel_diff(dev_model.param(i).value, host_model.param(i).value) < 1e-4);
    }
    CHECK(rel_diff(dev_model.running_mean(0), host_model.running_mean(0)) < 1e-4);
  }
}

TEST_CASE("cuda parity model: convnet_simclr<cpu> computes the library's W1 (ssl::simclr) loss and gradients") {
  // Needs no device: pins the op-level model used on the GPU to the library's own modules.
  simclr method(convnet_s<>(1, rng(0)), projection_mlp<>({.in_dim = 256, .hidden_dim = 256, .out_dim = 128}, rng(1)),
                nt_xent(0.5f));
  param_list<cpu> params;
  method.collect(params, "");
  REQUIRE(int(params.size()) == parity::convnet_simclr<cpu>::param_count);
  parity::convnet_simclr<cpu> model(3);  // different init, then overwritten
  for (int i = 0; i < int(params.size()); ++i) {
    model.set_value(i, params[size_t(i)].p->value);
    params[size_t(i)].p->grad.zero();
  }
  const std::vector<tensor<cpu>> views = {random(shape{8, 1, 28, 28}, 200, 0.0f, 1.0f),
                                          random(shape{8, 1, 28, 28}, 201, 0.0f, 1.0f)};
  tensor<cpu> both(shape{16, 1, 28, 28});
  std::copy_n(views[0].data(), views[0].numel(), both.data());
  std::copy_n(views[1].data(), views[1].numel(), both.data() + views[0].numel());
  const float expected = method.train_step(views).loss;
  const float loss = model.forward_backward(both);
  CHECK(std::abs(loss - expected) <= 1e-5f * std::abs(expected));
  for (int i = 0; i < int(params.size()); ++i) {
    INFO("parameter " << i << " (" << params[size_t(i)].name << ")");
    CHECK(ssl_test::rel_error(model.param(i).grad, params[size_t(i)].p->grad) < 1e-4);
  }
  CHECK_THROWS_AS(model.set_value(0, tensor<cpu>(shape{3, 3}, 0.0f)), shape_error);
}
