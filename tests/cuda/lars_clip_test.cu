// LARS updates and gradient clipping (global norm, per parameter) on the device against
// ssl::lars and ssl::clip_grad_norm / ssl::clip_grad_per_param.
#include <ssl/optim/clip_grad.hpp>
#include <ssl/optim/lars.hpp>

#include "loss_parity.cuh"

using namespace ssl;
using ssl_cuda_test::empty_device;
using ssl_cuda_test::random;
using ssl_cuda_test::rel_diff;

namespace {
struct lars_case {
  shape s;
  param_kind kind;
  bool zero_value;  // |w| = 0: trust ratio 1
};
}  // namespace

TEST_CASE("cuda: LARS (trust ratio, exclusion of biases, nesterov) matches ssl::lars over several steps") {
  SSL_REQUIRE_CUDA_DEVICE();
  const std::vector<lars_case> cases = {{shape{300, 7}, param_kind::weight, false},
                                        {shape{7}, param_kind::bias, false},
                                        {shape{10}, param_kind::weight, true},
                                        {shape{70000}, param_kind::weight, false}};
  for (bool nesterov : {false, true}) {
    INFO("nesterov " << nesterov);
    const lars_options o{0.3f, 0.9f, 1e-3f, 1e-3f, nesterov, true};
    std::vector<parameter<cpu>> host;
    for (size_t i = 0; i < cases.size(); ++i) {
      parameter<cpu> p(cases[i].s, cases[i].kind);
      if (!cases[i].zero_value) p.value = random(cases[i].s, 120 + i);
      host.push_back(std::move(p));
    }
    param_list<cpu> pl;
    for (size_t i = 0; i < host.size(); ++i) pl.push_back({"p" + std::to_string(i), &host[i]});
    lars opt(pl, o);
    std::vector<tensor<cuda>> w, b, ratio;
    for (const auto& p : host) {
      w.push_back(to_device(p.value));
      b.push_back(ops::full(p.value.shape(), 0.0f));
      ratio.push_back(ops::full(shape{1}, -1.0f));
    }
    for (int step = 0; step < 3; ++step) {
      for (size_t i = 0; i < host.size(); ++i) host[i].grad = random(cases[i].s, 200 + 10 * step + i);
      opt.step();
      for (size_t i = 0; i < host.size(); ++i)
        ops::lars_update(w[i], to_device(host[i].grad), b[i], o.lr, o.momentum, o.weight_decay, o.eta, nesterov,
                         opt.adapted(i), &ratio[i]);
    }
    for (size_t i = 0; i < host.size(); ++i) {
      INFO("parameter " << i);
      CHECK(rel_diff(w[i], host[i].value) < 1e-5);
      const float r = to_host_scalar(ratio[i]);
      CHECK(std::abs(r - opt.trust_ratios()[i]) <= 1e-5f * std::abs(opt.trust_ratios()[i]));
    }
    CHECK(opt.trust_ratios()[1] == 1.0f);  // the bias is excluded
    CHECK(opt.trust_ratios()[2] == 1.0f);  // |w| = 0
  }
  tensor<cuda> w = ops::full(shape{3}, 1.0f), b = ops::full(shape{3}, 0.0f);
  CHECK_THROWS_AS(ops::lars_update(w, ops::full(shape{4}, 1.0f), b, 0.1f, 0.9f, 0.0f, 1e-3f), shape_error);
}

namespace {
// Three parameters with the same random values and gradients on both backends; p1 frozen.
struct clip_setup {
  std::vector<parameter<cpu>> host;
  std::vector<parameter<cuda>> dev;
  param_list<cpu> host_list;
  param_list<cuda> dev_list;
  explicit clip_setup(float grad_scale) {
    const shape shapes[] = {shape{50, 20}, shape{33}, shape{100000}};
    for (int i = 0; i < 3; ++i) {
      parameter<cpu> p(shapes[i]);
      p.grad = random(shapes[i], 300 + i, -grad_scale, grad_scale);
      p.frozen = i == 1;
      parameter<cuda> d;
      d.value = to_device(p.value);
      d.grad = to_device(p.grad);
      d.frozen = p.frozen;
      host.push_back(std::move(p));
      dev.push_back(std::move(d));
    }
    for (int i = 0; i < 3; ++i) {
      host_list.push_back({"p" + std::to_string(i), &host[size_t(i)]});
      dev_list.push_back({"p" + std::to_string(i), &dev[size_t(i)]});
    }
  }
};
}  // namespace

TEST_CASE("cuda: global-norm and per-parameter gradient clipping match ssl::clip_grad_norm / clip_grad_per_param") {
  SSL_REQUIRE_CUDA_DEVICE();
  for (double max_norm : {0.5, 1e6}) {  // clips / leaves the gradients alone
    INFO("max_norm " << max_norm);
    clip_setup s(1.0f);
    const double ref = clip_grad_norm(s.host_list, max_norm);
    const double got = clip_grad_norm(s.dev_list, max_norm);
    CHECK(std::abs(got - ref) <= 1e-5 * ref);
    for (size_t i = 0; i < 3; ++i) CHECK(rel_diff(s.dev[i].grad, s.host[i].grad) < 1e-5);

    clip_setup t(1.0f);
    const std::vector<double> ref_norms = clip_grad_per_param(t.host_list, max_norm);
    const std::vector<double> got_norms = clip_grad_per_param(t.dev_list, max_norm);
    REQUIRE(got_norms.size() == ref_norms.size());
    for (size_t i = 0; i < 3; ++i) {
      CHECK(std::abs(got_norms[i] - ref_norms[i]) <= 1e-5 * ref_norms[i]);
      CHECK(rel_diff(t.dev[i].grad, t.host[i].grad) < 1e-5);
    }
  }
  // A non-finite norm throws numeric_error and leaves the gradients as they were.
  clip_setup s(1.0f);
  const float inf = INFINITY;
  SSL_CUDA_CHECK(cudaMemcpyAsync(s.dev[0].grad.data() + 7, &inf, sizeof(float), cudaMemcpyHostToDevice, gpu::stream()));
  s.host[0].grad[7] = inf;
  CHECK_THROWS_AS(clip_grad_norm(s.dev_list, 1.0), numeric_error);
  CHECK(to_host(s.dev[0].grad)[7] == inf);
  CHECK(rel_diff(s.dev[2].grad, s.host[2].grad) == 0.0);

  // Per parameter there is no throw: an infinite norm scales that gradient by max_norm / inf = 0
  // (the inf entry becomes NaN) on both backends; the other parameters are clipped as usual.
  clip_setup u(1.0f);
  SSL_CUDA_CHECK(cudaMemcpyAsync(u.dev[0].grad.data() + 7, &inf, sizeof(float), cudaMemcpyHostToDevice, gpu::stream()));
  u.host[0].grad[7] = inf;
  const std::vector<double> ref_norms = clip_grad_per_param(u.host_list, 1.0);
  const std::vector<double> got_norms = clip_grad_per_param(u.dev_list, 1.0);
  CHECK(std::isinf(ref_norms[0]));
  CHECK(std::isinf(got_norms[0]));
  const tensor<cpu> g0 = to_host(u.dev[0].grad);
  CHECK(std::isnan(u.host[0].grad[7]));
  CHECK(std::isnan(g0[7]));
  CHECK(u.host[0].grad[0] == 0.0f);
  CHECK(g0[0] == 0.0f);
  CHECK(rel_diff(u.dev[2].grad, u.host[2].grad) < 1e-5);
}

TEST_CASE("cuda: LARS / clipping reject bad arguments before any device work") {
  // Runs without a GPU: zero-element device tensors allocate nothing.
  tensor<cuda> w = empty_device(shape{0}), b = empty_device(shape{0});
  CHECK_THROWS_AS(ops::lars_update(w, empty_device(shape{0, 2}), b, 0.1f, 0.9f, 0.0f, 1e-3f), shape_error);
  CHECK_THROWS_AS(ops::lars_update(w, w, b, 0.1f, 1.0f, 0.0f, 1e-3f), value_error);
  CHECK_THROWS_AS(ops::lars_update(w, w, b, 0.1f, 0.9f, 0.0f, 0.0f), value_error);
  param_list<cuda> none;
  CHECK_THROWS_AS(clip_grad_norm(none, 0.0), value_error);
  CHECK_THROWS_AS(clip_grad_per_param(none, -1.0), value_error);
  CHECK(clip_grad_norm(none, 1.0) == 0.0);
}
