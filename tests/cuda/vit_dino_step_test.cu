// W3 (DINO training step, shared/WORKLOADS.md) at a small batch: the op-level model of
// backend/cuda/parity/vit_dino.cuh gives the same loss, gradients, updated parameters, center and
// EMA teacher on both backends, and its CPU instance computes what the library's ssl::dino_method does.
#include <ssl/backend/cuda/parity/vit_dino.cuh>
#include <ssl/encoders/vit.hpp>
#include <ssl/methods/dino.hpp>
#include <support/fixtures.hpp>

#include "cuda_test.cuh"

using namespace ssl;
using ssl_cuda_test::random;
using ssl_cuda_test::rel_diff;

TEST_CASE("cuda: DINO step (multi-crop ViT-T/4 + DINO head + loss + AdamW + EMA) matches the CPU step") {
  SSL_REQUIRE_CUDA_DEVICE();
  parity::vit_dino<cpu> host_model(42);
  parity::vit_dino<cuda> dev_model(42);
  auto& hp = host_model.student();
  auto& dp = dev_model.student();
  REQUIRE(hp.size() == dp.size());
  const int64_t N = 4;
  for (int step = 0; step < 2; ++step) {
    INFO("step " << step);
    const tensor<cpu> g = random(shape{2 * N, 1, 28, 28}, 500 + step, 0.0f, 1.0f);
    const tensor<cpu> l = random(shape{4 * N, 1, 12, 12}, 600 + step, 0.0f, 1.0f);
    const float loss = host_model.forward_backward(g, l);
    const float dev_loss = to_host_scalar(dev_model.forward_backward(to_device(g), to_device(l)));
    CHECK(std::abs(dev_loss - loss) <= 1e-4f * std::abs(loss));
    ssl_cuda_test::check_gradients_then_update(hp, dp, [&] {
      host_model.update();
      dev_model.update();
    });
    for (int64_t i = 0; i < hp.size(); ++i) {
      INFO("teacher parameter " << hp.name(i));
      CHECK(rel_diff(dev_model.teacher().at(i).value, host_model.teacher().at(i).value) < 1e-4);
    }
    CHECK(rel_diff(dev_model.center(), host_model.center()) < 1e-4);
  }
}

TEST_CASE("cuda parity model: vit_dino<cpu> computes the library's W3 (ssl::dino_method) loss and gradients") {
  // Needs no device: pins the op-level model used on the GPU to the library's own modules.
  dino_method method(vit<>(vit_options::tiny4(), rng(0)), dino_head<>(dino_head_options::w3(), rng(1)),
                     dino_options::w3());
  param_list<cpu> params;
  method.collect(params, "");
  parity::vit_dino<cpu> model(3);  // different init, then overwritten by name
  REQUIRE(int64_t(params.size()) == model.student().size());
  for (size_t i = 0; i < params.size(); ++i) {
    INFO("parameter " << params[i].name);
    REQUIRE(model.student().name(int64_t(i)) == params[i].name);
    model.student().set_value(params[i].name, params[i].p->value);
    params[i].p->grad.zero();
  }
  model.sync_teacher();  // the method's teacher starts as a copy of its student
  const int64_t N = 2;
  std::vector<tensor<cpu>> views;
  for (int v = 0; v < 6; ++v) views.push_back(random(shape{N, 1, v < 2 ? 28 : 12, v < 2 ? 28 : 12}, 700 + v, 0.0f, 1.0f));
  auto stack = [&](int first, int count) {
    const int64_t per = views[size_t(first)].numel();
    shape s = views[size_t(first)].shape();
    s[0] = count * N;
    tensor<cpu> t(s);
    for (int j = 0; j < count; ++j) std::copy_n(views[size_t(first + j)].data(), per, t.data() + j * per);
    return t;
  };
  const float expected = method.train_step(views).loss;
  const float loss = model.forward_backward(stack(0, 2), stack(2, 4));
  CHECK(std::abs(loss - expected) <= 1e-5f * std::abs(expected));
  for (size_t i = 0; i < params.size(); ++i) {
    INFO("parameter " << params[i].name);
    CHECK(ssl_test::rel_error(model.student().at(int64_t(i)).grad, params[i].p->grad) < 1e-4);
  }
  CHECK_THROWS_AS(model.forward_backward(stack(0, 2), stack(0, 2)), shape_error);
}
