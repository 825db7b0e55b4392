#pragma once
// Helpers of the method step-parity tests (method_*_test.cu): a <cpu> and a <cuda> instantiation of
// one method, built from the same seeds, take the same training steps; these compare them parameter
// by parameter and buffer by buffer, naming the parameter or buffer in every failure (INFO).
// Tolerances, relative to the largest CPU entry (rel_diff): initial values 0 (initialisers draw on
// the host), gradients 2e-3, values after an optimizer step 1e-4, buffers 1e-4, losses 1e-4.
#include <algorithm>
#include <cmath>
#include <concepts>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <ssl/methods/method.hpp>
#include <ssl/nn/module.hpp>
#include <ssl/optim/adamw.hpp>
#include <ssl/optim/sgd.hpp>

#include "cuda_test.cuh"

namespace ssl_cuda_test {

/// The parameters of both instantiations, in collect order (the same names at the same positions).
struct param_pair {
  ssl::param_list<ssl::cpu> host;
  ssl::param_list<ssl::cuda> dev;
  size_t size() const { return host.size(); }
};

/// Collects the parameters of both models; the lists must have the same length.
template <class HostModel, class DeviceModel>
param_pair collect_params(HostModel& host, DeviceModel& dev) {
  param_pair ps;
  host.collect(ps.host, "");
  dev.collect(ps.dev, "");
  REQUIRE(ps.host.size() == ps.dev.size());
  return ps;
}

/// The same names, and exactly the same initial values (initialisers draw on the host and copy).
inline void expect_identical_init(const param_pair& ps) {
  for (size_t i = 0; i < ps.size(); ++i) {
    INFO("parameter " << ps.host[i].name);
    REQUIRE(ps.dev[i].name == ps.host[i].name);
    CHECK(rel_diff(ps.dev[i].p->value, ps.host[i].p->value) == 0.0);
  }
}

namespace parity_detail {
inline double max_abs(const ssl::tensor<ssl::cpu>& t) {
  double m = 0;
  for (int64_t i = 0; i < t.numel(); ++i) m = std::max(m, double(std::abs(t[i])));
  return m;
}

inline const ssl::tensor<ssl::cpu>& host_grad_of(const param_pair& ps, const std::string& name) {
  for (const auto& r : ps.host)
    if (r.name == name) return r.p->grad;
  FAIL("no parameter " << name);
  return ps.host[0].p->grad;
}

// buffer name -> tensor, as collect_buffers lists them
template <class B>
using buffers = std::vector<std::pair<std::string, ssl::tensor<B>*>>;

template <class HostModel, class DeviceModel>
void compare_buffers(HostModel& host, DeviceModel& dev, bool exact) {
  buffers<ssl::cpu> hb;
  buffers<ssl::cuda> db;
  host.collect_buffers(hb, "");
  dev.collect_buffers(db, "");
  REQUIRE(hb.size() == db.size());
  for (size_t i = 0; i < hb.size(); ++i) {
    INFO("buffer " << hb[i].first);
    CHECK(db[i].first == hb[i].first);
    if (exact)
      CHECK(rel_diff(*db[i].second, *hb[i].second) == 0.0);
    else
      CHECK(rel_diff(*db[i].second, *hb[i].second) < 1e-4);
  }
}
}  // namespace parity_detail

/// Every gradient within 2e-3. A bias in bn_fed_biases ("<layer>.bias") feeds a BatchNorm, which
/// removes any constant shift: its exact gradient is 0 and both backends hold rounding noise there,
/// so each side is checked by size instead: max |grad| < 1e-4 * max |grad of "<layer>.weight"| (CPU).
inline void expect_close_gradients(const param_pair& ps, const std::vector<std::string>& bn_fed_biases = {}) {
  for (size_t i = 0; i < ps.size(); ++i) {
    INFO("gradient of " << ps.host[i].name);
    const std::string& n = ps.host[i].name;
    if (std::find(bn_fed_biases.begin(), bn_fed_biases.end(), n) != bn_fed_biases.end()) {
      const std::string weight = n.substr(0, n.size() - 4) + "weight";
      const double w_scale = parity_detail::max_abs(parity_detail::host_grad_of(ps, weight));
      REQUIRE(w_scale > 0);
      CHECK(parity_detail::max_abs(ps.host[i].p->grad) < 1e-4 * w_scale);
      CHECK(parity_detail::max_abs(ssl::to_host(ps.dev[i].p->grad)) < 1e-4 * w_scale);
    } else {
      CHECK(rel_diff(ps.dev[i].p->grad, ps.host[i].p->grad) < 2e-3);
    }
  }
}

/// Every value within 1e-4 (after the optimizers' steps).
inline void expect_close_values(const param_pair& ps) {
  for (size_t i = 0; i < ps.size(); ++i) {
    INFO("value of " << ps.host[i].name);
    CHECK(rel_diff(ps.dev[i].p->value, ps.host[i].p->value) < 1e-4);
  }
}

/// Every buffer of collect_buffers (BN statistics and counters, EMA teachers, centers, queues):
/// the same names, values within 1e-4.
template <class HostModel, class DeviceModel>
void expect_close_buffers(HostModel& host, DeviceModel& dev) {
  parity_detail::compare_buffers(host, dev, false);
}

/// As expect_close_buffers, values exactly equal (before any step: teachers are copies, initial
/// queues are drawn on the host).
template <class HostModel, class DeviceModel>
void expect_identical_buffers(HostModel& host, DeviceModel& dev) {
  parity_detail::compare_buffers(host, dev, true);
}

/// The train_step losses (or another loss, named by what): |cuda - cpu| <= 1e-4 |cpu|, both printed
/// on failure.
inline void expect_close_loss(float loss, float dev_loss, const char* what = "loss") {
  INFO(what << ": cpu " << loss << ", cuda " << dev_loss);
  CHECK(std::abs(dev_loss - loss) <= 1e-4f * std::abs(loss));
}

/// Zeroes every gradient of both models.
inline void zero_gradients(const param_pair& ps) {
  for (const auto& r : ps.host) r.p->grad.zero();
  for (const auto& r : ps.dev) r.p->grad.zero();
}

/// Copies the host gradients over the device ones. Before an AdamW step: AdamW divides by
/// sqrt(v) + eps, which amplifies the backends' rounding noise on ~0 gradients, so both update from
/// the host gradients (compared before this).
inline void upload_gradients(const param_pair& ps) {
  for (size_t i = 0; i < ps.size(); ++i) ps.dev[i].p->grad = ssl::to_device(ps.host[i].p->grad);
}

/// Device copies of host views.
inline std::vector<ssl::tensor<ssl::cuda>> upload_views(const std::vector<ssl::tensor<ssl::cpu>>& views) {
  std::vector<ssl::tensor<ssl::cuda>> d;
  for (const auto& v : views) d.push_back(ssl::to_device(v));
  return d;
}

/// make_views for the check_two_*_steps drivers: at step s, one view (B, C, 28, 28) in [0, 1] drawn
/// with seed seed + s.
inline auto one_view(int64_t batch, int64_t channels, uint64_t seed) {
  return [=](int step) {
    return std::vector<ssl::tensor<ssl::cpu>>{
        random(ssl::shape{batch, channels, 28, 28}, seed + uint64_t(step), 0.0f, 1.0f)};
  };
}

/// make_views for the check_two_*_steps drivers: at step s, two views (B, 1, 28, 28) in [0, 1]
/// drawn with seeds seed + 2 s and seed + 2 s + 1.
inline auto two_views(int64_t batch, uint64_t seed) {
  return [=](int step) {
    const uint64_t s = seed + 2 * uint64_t(step);
    return std::vector<ssl::tensor<ssl::cpu>>{random(ssl::shape{batch, 1, 28, 28}, s, 0.0f, 1.0f),
                                              random(ssl::shape{batch, 1, 28, 28}, s + 1, 0.0f, 1.0f)};
  };
}

/// m.train_step(views).loss, for any method and backend.
struct plain_step {
  template <class M, class V>
  float operator()(M& m, const V& views) const {
    return m.train_step(views).loss;
  }
};

/// What run_parity_steps does besides the common checks.
struct parity_steps_options {
  int steps = 2;
  /// BN-fed biases, checked by size (see expect_close_gradients).
  std::vector<std::string> bn_fed_biases;
  /// Both optimizers update from the host gradients (upload_gradients; AdamW).
  bool from_host_gradients = false;
  /// > 0: after_step({step + 1, after_step_total, 0}) on both after the optimizer step.
  int64_t after_step_total = 0;
  /// Method-specific checks at step s (the INFO "step s" in force): after both train_steps (before
  /// the gradients are compared), and at the end of the step (after after_step).
  std::function<void(int)> after_train_step;
  std::function<void(int)> end_of_step;
};

/// The training steps of a method parity test: at each step s, the host views make_views(s) and their
/// device copies, zero_grad, one train_step of each instantiation (step_host / step_dev return the
/// loss), then checked: a finite device loss, the loss, o.after_train_step(s), every gradient (with
/// o.bn_fed_biases), every value after both optimizers' steps; then o.after_step_total's after_step and
/// o.end_of_step(s). The caller makes the optimizers (on ps) and checks what comes before and after.
template <class HostMethod, class DeviceMethod, class HostOpt, class DeviceOpt, class Views,
          class StepHost = plain_step, class StepDev = plain_step>
void run_parity_steps(HostMethod& host, DeviceMethod& dev, const param_pair& ps, HostOpt& host_opt,
                      DeviceOpt& dev_opt, Views&& make_views, const parity_steps_options& o,
                      StepHost&& step_host = {}, StepDev&& step_dev = {}) {
  for (int step = 0; step < o.steps; ++step) {
    INFO("step " << step);
    const std::vector<ssl::tensor<ssl::cpu>> views = make_views(step);
    const std::vector<ssl::tensor<ssl::cuda>> dev_views = upload_views(views);
    host_opt.zero_grad();
    dev_opt.zero_grad();
    const float loss = step_host(host, views);
    const float dev_loss = step_dev(dev, dev_views);
    CHECK(std::isfinite(dev_loss));
    expect_close_loss(loss, dev_loss);
    if (o.after_train_step) o.after_train_step(step);
    expect_close_gradients(ps, o.bn_fed_biases);
    if (o.from_host_gradients) upload_gradients(ps);
    host_opt.step();
    dev_opt.step();
    expect_close_values(ps);
    if (o.after_step_total > 0) {
      const ssl::step_info info{step + 1, o.after_step_total, 0};
      host.after_step(info);
      dev.after_step(info);
    }
    if (o.end_of_step) o.end_of_step(step);
  }
}

/// Two SGD steps (lr 0.05, momentum 0.9, weight decay 5e-4) of both instantiations on the same views
/// (make_views(step) gives the host views; step_host / step_dev run one train_step and return its
/// loss), each followed by after_step({step + 1, 10, 0}). Checked: identical initial parameters and
/// buffers; at each step what run_parity_steps checks (bn_fed_biases: see expect_close_gradients);
/// at the end every buffer.
template <class HostMethod, class DeviceMethod, class Views, class StepHost, class StepDev>
void check_two_sgd_steps(HostMethod& host, DeviceMethod& dev, Views&& make_views, StepHost&& step_host,
                         StepDev&& step_dev, const std::vector<std::string>& bn_fed_biases) {
  const param_pair ps = collect_params(host, dev);
  expect_identical_init(ps);
  expect_identical_buffers(host, dev);
  const ssl::sgd_options o{.lr = 0.05f, .momentum = 0.9f, .weight_decay = 5e-4f};
  ssl::sgd host_opt(ps.host, o);
  ssl::sgd dev_opt(ps.dev, o);
  static_assert(std::same_as<decltype(dev_opt), ssl::sgd<ssl::cuda>>);
  run_parity_steps(host, dev, ps, host_opt, dev_opt, make_views,
                   {.bn_fed_biases = bn_fed_biases, .after_step_total = 10}, step_host, step_dev);
  expect_close_buffers(host, dev);
}

/// check_two_sgd_steps with m.train_step(views) on both sides.
template <class HostMethod, class DeviceMethod, class Views>
void check_two_sgd_steps(HostMethod& host, DeviceMethod& dev, Views&& make_views,
                         const std::vector<std::string>& bn_fed_biases) {
  check_two_sgd_steps(host, dev, make_views, plain_step{}, plain_step{}, bn_fed_biases);
}

/// Two AdamW steps (MAE's recipe: lr 1.5e-4, betas (0.9, 0.95), eps 1e-8, weight decay 0.05) of both
/// instantiations on the same views (make_views(step) gives the host views), each followed, where
/// after_step is true, by after_step({step + 1, 2, 0}) (the trainer's step count: MaskFeat draws its
/// next mask from it). Checked: identical initial parameters; at each step what run_parity_steps
/// checks, both updating from the host gradients (upload_gradients).
template <class HostMethod, class DeviceMethod, class Views>
void check_two_adamw_steps(HostMethod& host, DeviceMethod& dev, Views&& make_views, bool after_step) {
  const param_pair ps = collect_params(host, dev);
  expect_identical_init(ps);
  const ssl::adamw_options o{.lr = 1.5e-4f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.05f};
  ssl::adamw host_opt(ps.host, o);
  ssl::adamw dev_opt(ps.dev, o);
  static_assert(std::same_as<decltype(dev_opt), ssl::adamw<ssl::cuda>>);
  run_parity_steps(host, dev, ps, host_opt, dev_opt, make_views,
                   {.from_host_gradients = true, .after_step_total = after_step ? 2 : 0});
}

}  // namespace ssl_cuda_test
