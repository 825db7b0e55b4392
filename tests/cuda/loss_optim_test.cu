// NT-Xent, optimizer updates and EMA against the library's CPU implementations.
#include <ssl/losses/cross_entropy.hpp>
#include <ssl/losses/nt_xent.hpp>
#include <ssl/optim/adamw.hpp>
#include <ssl/optim/ema.hpp>
#include <ssl/optim/sgd.hpp>

#include "cuda_test.cuh"

using namespace ssl;
using ssl_cuda_test::random;
using ssl_cuda_test::rel_diff;

TEST_CASE("cuda: NT-Xent loss and gradient match ssl::nt_xent") {
  SSL_REQUIRE_CUDA_DEVICE();
  for (const auto& [rows, dim, tau] : {std::tuple{8, 16, 0.5f}, std::tuple{64, 128, 0.1f}, std::tuple{512, 128, 0.5f}}) {
    INFO("rows " << rows << " dim " << dim << " tau " << tau);
    const tensor<cpu> z = random(shape{rows, dim}, 1);
    const nt_xent_result ref = nt_xent(tau)(z);
    const ops::nt_xent_device_result got = ops::nt_xent(to_device(z), tau);
    CHECK(std::abs(to_host_scalar(got.value) - ref.value) <= 1e-5f * std::max(1.0f, std::abs(ref.value)));
    CHECK(rel_diff(got.grad_z, ref.grad_z) < 1e-4);
  }
  CHECK_THROWS_AS(ops::nt_xent(ops::full(shape{5, 4}, 1.0f), 0.5f), shape_error);
  CHECK_THROWS_AS(ops::nt_xent(ops::full(shape{4, 4}, 1.0f), 0.0f), value_error);
}

TEST_CASE("cuda: cross-entropy (label smoothing, class weights) matches ssl::cross_entropy") {
  SSL_REQUIRE_CUDA_DEVICE();
  for (int64_t C : {10, 1000})
    for (float eps : {0.0f, 0.1f})
      for (bool weighted : {false, true}) {
        INFO("C " << C << " smoothing " << eps << " weighted " << weighted);
        const int64_t N = 37;
        const tensor<cpu> logits = random(shape{N, C}, 30, -6.0f, 6.0f);
        std::vector<int64_t> labels(static_cast<size_t>(N));
        for (int64_t i = 0; i < N; ++i) labels[size_t(i)] = (i * 7 + 3) % C;
        std::vector<float> weights;
        if (weighted) {
          const tensor<cpu> w = random(shape{C}, 31, 0.2f, 2.0f);
          weights.assign(w.data(), w.data() + C);
        }
        const cross_entropy_result ref = cross_entropy(eps, weights)(logits, labels);
        const ops::cross_entropy_device_result got = ops::cross_entropy(to_device(logits), labels, eps, weights);
        CHECK(std::abs(to_host_scalar(got.value) - ref.value) <= 1e-5f * std::max(1.0f, std::abs(ref.value)));
        CHECK(rel_diff(got.grad_logits, ref.grad_logits) < 1e-4);
      }
  const tensor<cuda> logits = ops::full(shape{2, 3}, 0.0f);
  CHECK_THROWS_AS(ops::cross_entropy(logits, std::vector<int64_t>{0, 3}), value_error);
  CHECK_THROWS_AS(ops::cross_entropy(logits, std::vector<int64_t>{0}), shape_error);
}

namespace {
// A CPU parameter holding `value` with gradient `grad`.
parameter<cpu> make_param(const tensor<cpu>& value, const tensor<cpu>& grad) {
  parameter<cpu> p(value.shape());
  p.value = value;
  p.grad = grad;
  return p;
}
}  // namespace

TEST_CASE("cuda: SGD (momentum, nesterov, weight decay) matches ssl::sgd over several steps") {
  SSL_REQUIRE_CUDA_DEVICE();
  for (bool nesterov : {false, true})
    for (float momentum : {0.0f, 0.9f}) {
      if (nesterov && momentum == 0.0f) continue;
      INFO("momentum " << momentum << " nesterov " << nesterov);
      parameter<cpu> p = make_param(random(shape{300, 7}, 2), random(shape{300, 7}, 3));
      sgd opt(param_list<cpu>{{"w", &p}}, sgd_options{0.05f, momentum, 1e-3f, nesterov});
      tensor<cuda> w = to_device(p.value), buf = ops::full(p.value.shape(), 0.0f);
      for (int s = 0; s < 3; ++s) {
        p.grad = random(shape{300, 7}, 10 + s);
        opt.step();
        ops::sgd_update(w, to_device(p.grad), momentum > 0 ? &buf : nullptr, 0.05f, momentum, 1e-3f, nesterov);
      }
      CHECK(rel_diff(w, p.value) < 1e-6);
    }
  tensor<cuda> w = ops::full(shape{3}, 1.0f);
  CHECK_THROWS_AS(ops::sgd_update(w, ops::full(shape{3}, 1.0f), nullptr, 0.1f, 0.9f, 0.0f), value_error);
}

TEST_CASE("cuda: AdamW matches ssl::adamw over several steps") {
  SSL_REQUIRE_CUDA_DEVICE();
  parameter<cpu> p = make_param(random(shape{1000}, 4), random(shape{1000}, 5));
  const adamw_options o{1e-2f, 0.9f, 0.95f, 1e-8f, 0.05f};
  adamw opt(param_list<cpu>{{"w", &p}}, o);
  tensor<cuda> w = to_device(p.value), m = ops::full(shape{1000}, 0.0f), v = ops::full(shape{1000}, 0.0f);
  for (int s = 1; s <= 4; ++s) {
    p.grad = random(shape{1000}, 20 + s);
    opt.step();
    ops::adamw_update(w, to_device(p.grad), m, v, s, o.lr, o.beta1, o.beta2, o.eps, o.weight_decay);
  }
  CHECK(rel_diff(w, p.value) < 1e-5);
  CHECK_THROWS_AS(ops::adamw_update(w, to_device(p.grad), m, v, 0, o.lr, o.beta1, o.beta2, o.eps, o.weight_decay),
                  value_error);
}

TEST_CASE("cuda: EMA update matches ssl::ema_update") {
  SSL_REQUIRE_CUDA_DEVICE();
  tensor<cpu> t = random(shape{77, 5}, 6);
  const tensor<cpu> s = random(shape{77, 5}, 7);
  tensor<cuda> gt = to_device(t);
  ema_update(t, s, 0.996f);
  ema_update(gt, to_device(s), 0.996f);
  CHECK(rel_diff(gt, t) < 1e-6);
  CHECK_THROWS_AS(ema_update(gt, to_device(s), 1.5f), value_error);
}
