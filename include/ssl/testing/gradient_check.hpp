#pragma once
// Finite-difference gradient checker, shipped so users can test their own layers.
//
// For a module m and input x it draws a fixed random cotangent r (shape of y) and
// checks the analytic gradients of  L(x, θ) = <m.forward(x).y, r>  (accumulated in
// double precision) against central differences (L(v+ε) - L(v-ε)) / 2ε for a sample
// of coordinates of x and of every parameter. Forward passes run in float32, so the
// tolerance is |analytic - numeric| <= atol + rtol * max(|analytic|, |numeric|).
#include <algorithm>
#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "../core/rng.hpp"
#include "../nn/module.hpp"

namespace ssl::testing {

struct gradient_check_options {
  double eps = 1e-2;          // finite-difference step (relative steps behave badly near 0)
  double rtol = 2e-2;         // relative tolerance
  double atol = 2e-3;         // absolute tolerance
  int max_checks = 24;        // coordinates sampled per tensor (all if the tensor is smaller)
  uint64_t seed = 1234;       // cotangent and sampling seed
  bool check_input = true;    // also check dL/dx
};

/// One failing coordinate.
struct gradient_mismatch {
  std::string tensor_name;
  int64_t index;
  double analytic, numeric;
};

struct gradient_check_result {
  int checked = 0;
  std::vector<gradient_mismatch> mismatches;
  double max_abs_error = 0;
  bool ok() const { return mismatches.empty() && checked > 0; }
  /// Human-readable summary of the first mismatches.
  std::string report() const {
    std::ostringstream os;
    os << checked << " coordinates checked, " << mismatches.size() << " mismatches, max |error| " << max_abs_error;
    for (size_t i = 0; i < std::min<size_t>(mismatches.size(), 8); ++i) {
      const auto& m = mismatches[i];
      os << "\n  " << m.tensor_name << "[" << m.index << "]: analytic " << m.analytic << ", numeric " << m.numeric;
    }
    return os.str();
  }
};

namespace detail {
inline std::vector<int64_t> sample_indices(int64_t n, int max_checks, rng& g) {
  std::vector<int64_t> idx;
  if (n <= max_checks) {
    for (int64_t i = 0; i < n; ++i) idx.push_back(i);
  } else {
    for (int k = 0; k < max_checks; ++k) idx.push_back(int64_t(g.below(uint32_t(n))));
  }
  return idx;
}
inline double dot_double(const tensor<cpu>& a, const tensor<cpu>& b) {
  double s = 0;
  for (int64_t i = 0; i < a.numel(); ++i) s += double(a[i]) * double(b[i]);
  return s;
}
inline void compare(const std::string& name, int64_t i, double a, double n, const gradient_check_options& o,
                    gradient_check_result& res) {
  const double err = std::abs(a - n);
  res.max_abs_error = std::max(res.max_abs_error, err);
  ++res.checked;
  if (!(err <= o.atol + o.rtol * std::max(std::abs(a), std::abs(n)))) res.mismatches.push_back({name, i, a, n});
}
}  // namespace detail

/// Generic form: `loss(inputs)` returns a scalar; `grads[k]` is the analytic dL/d inputs[k].
/// Every input is perturbed in place (and restored).
inline gradient_check_result check_function_gradients(const std::function<double(std::vector<tensor<cpu>>&)>& loss,
                                                      std::vector<tensor<cpu>> inputs,
                                                      const std::vector<tensor<cpu>>& grads,
                                                      const gradient_check_options& o = {}) {
  check<shape_error>(inputs.size() == grads.size(), "check_function_gradients: ", inputs.size(), " inputs but ",
                     grads.size(), " gradients");
  gradient_check_result res;
  rng g(o.seed, 7);
  for (size_t k = 0; k < inputs.size(); ++k) {
    expect_shape(grads[k], inputs[k].shape(), "check_function_gradients gradient");
    for (int64_t i : detail::sample_indices(inputs[k].numel(), o.max_checks, g)) {
      const float v = inputs[k][i];
      inputs[k][i] = float(v + o.eps);
      const double lp = loss(inputs);
      inputs[k][i] = float(v - o.eps);
      const double lm = loss(inputs);
      inputs[k][i] = v;
      detail::compare("input" + std::to_string(k), i, grads[k][i], (lp - lm) / (2 * o.eps), o, res);
    }
  }
  return res;
}

/// Checks a Module's backward against finite differences, for the input and every parameter.
template <Module M>
gradient_check_result check_module_gradients(M& m, tensor<cpu> x, const gradient_check_options& o = {}) {
  gradient_check_result res;
  rng g(o.seed);
  auto first = m.forward(x);
  tensor<cpu> r(first.y.shape());
  for (int64_t i = 0; i < r.numel(); ++i) r[i] = g.normal();
  auto params = parameters(m);
  for (auto& pr : params) pr.p->grad.zero();
  const tensor<cpu> dx = m.backward(first.saved, r);
  std::vector<tensor<cpu>> pgrads;
  for (auto& pr : params) pgrads.push_back(pr.p->grad);

  auto L = [&] { return detail::dot_double(m.forward(x).y, r); };
  if (o.check_input) {
    for (int64_t i : detail::sample_indices(x.numel(), o.max_checks, g)) {
      const float v = x[i];
      x[i] = float(v + o.eps);
      const double lp = L();
      x[i] = float(v - o.eps);
      const double lm = L();
      x[i] = v;
      detail::compare("input", i, dx[i], (lp - lm) / (2 * o.eps), o, res);
    }
  }
  for (size_t k = 0; k < params.size(); ++k) {
    auto& val = params[k].p->value;
    for (int64_t i : detail::sample_indices(val.numel(), o.max_checks, g)) {
      const float v = val[i];
      val[i] = float(v + o.eps);
      const double lp = L();
      val[i] = float(v - o.eps);
      const double lm = L();
      val[i] = v;
      detail::compare(params[k].name, i, pgrads[k][i], (lp - lm) / (2 * o.eps), o, res);
    }
  }
  return res;
}

}  // namespace ssl::testing
