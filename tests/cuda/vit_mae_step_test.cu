// W2 (MAE training step, shared/WORKLOADS.md) at a small batch: the op-level model of
// backend/cuda/parity/vit_mae.cuh gives the same loss, gradients and updated parameters on both
// backends, and its CPU instance computes exactly what the library's ssl::mae computes.
#include <ssl/backend/cuda/parity/vit_mae.cuh>
#include <ssl/methods/mae.hpp>
#include <support/fixtures.hpp>

#include "cuda_test.cuh"

using namespace ssl;
using ssl_cuda_test::random;
using ssl_cuda_test::rel_diff;

TEST_CASE("cuda: MAE step (ViT-T/4 + decoder + norm-pix loss + AdamW) matches the CPU step") {
  SSL_REQUIRE_CUDA_DEVICE();
  parity::vit_mae<cpu> host_model(42);
  parity::vit_mae<cuda> dev_model(42);
  auto& hp = host_model.params();
  auto& dp = dev_model.params();
  REQUIRE(hp.size() == dp.size());
  for (int step = 0; step < 2; ++step) {
    INFO("step " << step);
    const tensor<cpu> x = random(shape{8, 1, 28, 28}, 300 + step, 0.0f, 1.0f);
    const token_mask m = host_model.mask_for_step(8, step);
    const float loss = host_model.forward_backward(x, m);
    const float dev_loss = to_host_scalar(dev_model.forward_backward(to_device(x), m));
    CHECK(std::abs(dev_loss - loss) <= 1e-4f * std::abs(loss));
    ssl_cuda_test::check_gradients_then_update(hp, dp, [&] {
      host_model.update();
      dev_model.update();
    });
  }
}

TEST_CASE("cuda parity model: vit_mae<cpu> computes the library's W2 (ssl::mae) loss and gradients") {
  // Needs no device: pins the op-level model used on the GPU to the library's own modules.
  mae method(vit<>(vit_options::tiny4(), rng(0)), mae_decoder<>({}, rng(1)),
             mae_options{.mask_ratio = 0.75f, .norm_pix_loss = true, .seed = 5});
  param_list<cpu> params;
  method.collect(params, "");
  parity::vit_mae<cpu> model(3);  // different init, then overwritten by name
  REQUIRE(int64_t(params.size()) == model.params().size());
  for (size_t i = 0; i < params.size(); ++i) {
    INFO("parameter " << params[i].name);
    REQUIRE(model.params().name(int64_t(i)) == params[i].name);
    model.params().set_value(params[i].name, params[i].p->value);
    params[i].p->grad.zero();
  }
  const int64_t N = 4;
  const tensor<cpu> x = random(shape{N, 1, 28, 28}, 400, 0.0f, 1.0f);
  const token_mask m = method.mask_for_step(N, 49, 0);  // the mask train_step draws at step 0
  CHECK(m.kept == 12);
  const float expected = method.train_step({x}).loss;
  const float loss = model.forward_backward(x, m);
  CHECK(std::abs(loss - expected) <= 1e-5f * std::abs(expected));
  for (size_t i = 0; i < params.size(); ++i) {
    INFO("parameter " << params[i].name);
    CHECK(ssl_test::rel_error(model.params().at(int64_t(i)).grad, params[i].p->grad) < 1e-4);
  }
  // A different mask gives a different loss (the comparison above can fail).
  const float other = model.forward_backward(x, method.mask_for_step(N, 49, 1));
  CHECK(std::abs(other - expected) > 1e-6f * std::abs(expected));
  CHECK_THROWS_AS(model.params().set_value("encoder.cls_token", tensor<cpu>(shape{3}, 0.0f)), shape_error);
  CHECK_THROWS_AS(model.params().set_value("no.such.parameter", tensor<cpu>(shape{3}, 0.0f)), value_error);
  CHECK_THROWS_AS(model.forward_backward(tensor<cpu>(shape{N, 1, 24, 24}, 0.0f), m), shape_error);
}
