#pragma once
// Full-batch L-BFGS with a strong-Wolfe line search, following the semantics of
// torch.optim.LBFGS (one `step` call, line_search_fn="strong_wolfe"), so that a
// linear probe trained here stops where PyTorch's would:
//   - first direction d = -g, first step t = min(1, 1/|g|_1) * lr, later t = lr;
//   - curvature pair (s, y) kept only when y.s > 1e-10; history of `history` pairs;
//     initial Hessian H0 = (y.s)/(y.y) of the newest pair; two-loop recursion;
//   - line search: bracketing with cubic interpolation (c1 1e-4, c2 0.9, 25 evals),
//     then zoom with the "insufficient progress" safeguard;
//   - stops on max_iter, max_eval evaluations, |g|_inf <= tolerance_grad, g.d > -tolerance_change,
//     |t d|_inf <= tolerance_change, or |f_k - f_{k-1}| < tolerance_change.
// All optimizer arithmetic is in double; the objective decides its own precision.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <deque>
#include <functional>
#include <vector>

#include "../core/error.hpp"

namespace ssl::eval {

struct lbfgs_options {
  double lr = 1.0;
  int max_iter = 500;
  int max_eval = 0;  // 0: max_iter * 5 / 4 (PyTorch's default)
  int history = 20;
  double tolerance_grad = 1e-6;
  double tolerance_change = 1e-9;
};

struct lbfgs_result {
  double loss = 0;      // objective at the returned point
  int iterations = 0;   // outer iterations taken
  int evaluations = 0;  // objective evaluations, the initial one included
};

/// f(x, grad) returns the objective at x and writes its gradient into grad (same size as x).
using objective_fn = std::function<double(const std::vector<double>& x, std::vector<double>& grad)>;

namespace detail {

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}
inline double abs_max(const std::vector<double>& a) {
  double m = 0;
  for (double v : a) m = std::max(m, std::abs(v));
  return m;
}

// Minimiser of the cubic through (x1, f1, g1) and (x2, f2, g2), clamped to [lo, hi].
inline double cubic_minimum(double x1, double f1, double g1, double x2, double f2, double g2, double lo, double hi) {
  const double d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2);
  const double d2_sq = d1 * d1 - g1 * g2;
  if (d2_sq < 0) return (lo + hi) / 2;
  const double d2 = std::sqrt(d2_sq);
  const double m = x1 <= x2 ? x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
                            : x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2));
  return std::min(std::max(m, lo), hi);
}

struct line_point {
  double t, f, gtd;
  std::vector<double> g;
};

// Strong-Wolfe line search along d from x (objective f0, gradient g0, slope gtd0 < 0), first trial t.
// Returns the accepted point; `evals` counts objective evaluations.
inline line_point strong_wolfe(const objective_fn& fn, const std::vector<double>& x, const std::vector<double>& d,
                               double t, double f0, const std::vector<double>& g0, double gtd0, int& evals) {
  constexpr double c1 = 1e-4, c2 = 0.9, tol_change = 1e-9;
  constexpr int max_ls = 25;
  const double d_norm = abs_max(d);
  std::vector<double> xt(x.size());
  auto eval_at = [&](double step) {
    for (size_t i = 0; i < x.size(); ++i) xt[i] = x[i] + step * d[i];
    line_point p{step, 0, 0, std::vector<double>(x.size())};
    p.f = fn(xt, p.g);
    p.gtd = dot(p.g, d);
    ++evals;
    return p;
  };

  line_point prev{0, f0, gtd0, g0};
  line_point cur = eval_at(t);
  std::vector<line_point> bracket;
  bool done = false;
  int ls_iter = 0;
  while (ls_iter < max_ls) {
    if (cur.f > f0 + c1 * cur.t * gtd0 || (ls_iter > 1 && cur.f >= prev.f)) {
      bracket = {prev, cur};
      break;
    }
    if (std::abs(cur.gtd) <= -c2 * gtd0) {
      bracket = {cur};
      done = true;
      break;
    }
    if (cur.gtd >= 0) {
      bracket = {prev, cur};
      break;
    }
    // extrapolate: cubic step within [t + 0.01 (t - t_prev), 10 t]
    const double next = cubic_minimum(prev.t, prev.f, prev.gtd, cur.t, cur.f, cur.gtd, cur.t + 0.01 * (cur.t - prev.t),
                                      cur.t * 10);
    prev = std::move(cur);
    cur = eval_at(next);
    ++ls_iter;
  }
  if (ls_iter == max_ls) bracket = {line_point{0, f0, gtd0, g0}, cur};

  // zoom: shrink the bracket [lo, hi] until the strong Wolfe conditions hold
  bool insufficient_progress = false;
  size_t lo = 0, hi = 1;
  if (bracket.size() == 2 && bracket[0].f > bracket[1].f) std::swap(lo, hi);
  if (bracket.size() == 1) hi = 0;
  while (!done && ls_iter < max_ls) {
    if (std::abs(bracket[1].t - bracket[0].t) * d_norm < tol_change) break;
    const double bmin = std::min(bracket[0].t, bracket[1].t), bmax = std::max(bracket[0].t, bracket[1].t);
    double tn = cubic_minimum(bracket[0].t, bracket[0].f, bracket[0].gtd, bracket[1].t, bracket[1].f, bracket[1].gtd,
                              bmin, bmax);
    const double eps = 0.1 * (bmax - bmin);
    if (std::min(bmax - tn, tn - bmin) < eps) {
      // too close to an end of the bracket: move it inside unless the last step made progress
      if (insufficient_progress || tn >= bmax || tn <= bmin) {
        tn = std::abs(tn - bmax) < std::abs(tn - bmin) ? bmax - eps : bmin + eps;
        insufficient_progress = false;
      } else {
        insufficient_progress = true;
      }
    } else {
      insufficient_progress = false;
    }
    line_point p = eval_at(tn);
    ++ls_iter;
    if (p.f > f0 + c1 * p.t * gtd0 || p.f >= bracket[lo].f) {
      bracket[hi] = std::move(p);
      if (bracket[0].f <= bracket[1].f) lo = 0, hi = 1;
      else lo = 1, hi = 0;
    } else {
      if (std::abs(p.gtd) <= -c2 * gtd0)
        done = true;
      else if (p.gtd * (bracket[hi].t - bracket[lo].t) >= 0)
        bracket[hi] = bracket[lo];
      bracket[lo] = std::move(p);
    }
  }
  return std::move(bracket[lo]);
}

}  // namespace detail

/// Minimises fn from x (updated in place). Mirrors one call of torch.optim.LBFGS.step.
inline lbfgs_result lbfgs_minimize(const objective_fn& fn, std::vector<double>& x, const lbfgs_options& o = {}) {
  check(o.lr > 0, "lbfgs: lr must be > 0, got ", o.lr);
  check(o.max_iter >= 1, "lbfgs: max_iter must be >= 1, got ", o.max_iter);
  check(o.history >= 1, "lbfgs: history must be >= 1, got ", o.history);
  const int max_eval = o.max_eval > 0 ? o.max_eval : o.max_iter * 5 / 4;
  const size_t n = x.size();

  lbfgs_result res;
  std::vector<double> g(n);
  double f = fn(x, g);
  res.evaluations = 1;
  res.loss = f;
  check<numeric_error>(std::isfinite(f), "lbfgs: objective is not finite at the start (", f, ")");
  if (detail::abs_max(g) <= o.tolerance_grad) return res;

  std::deque<std::vector<double>> ys, ss;  // curvature pairs, oldest first
  std::deque<double> rho;
  std::vector<double> d(n), g_prev(n), q(n), alpha(size_t(o.history));
  double t = 0, h_diag = 1;
  while (res.iterations < o.max_iter) {
    ++res.iterations;
    if (res.iterations == 1) {
      for (size_t i = 0; i < n; ++i) d[i] = -g[i];
    } else {
      // update the curvature history with s = t d, y = g - g_prev
      std::vector<double> y(n), s(n);
      for (size_t i = 0; i < n; ++i) y[i] = g[i] - g_prev[i], s[i] = t * d[i];
      const double yts = detail::dot(y, s);
      if (yts > 1e-10) {
        if (int(ys.size()) == o.history) ys.pop_front(), ss.pop_front(), rho.pop_front();
        h_diag = yts / detail::dot(y, y);
        ys.push_back(std::move(y));
        ss.push_back(std::move(s));
        rho.push_back(1.0 / yts);
      }
      // two-loop recursion: d = -H g
      for (size_t i = 0; i < n; ++i) q[i] = -g[i];
      for (int k = int(ys.size()) - 1; k >= 0; --k) {
        alpha[k] = detail::dot(ss[k], q) * rho[k];
        for (size_t i = 0; i < n; ++i) q[i] -= alpha[k] * ys[k][i];
      }
      for (size_t i = 0; i < n; ++i) d[i] = q[i] * h_diag;
      for (size_t k = 0; k < ys.size(); ++k) {
        const double beta = detail::dot(ys[k], d) * rho[k];
        for (size_t i = 0; i < n; ++i) d[i] += ss[k][i] * (alpha[k] - beta);
      }
    }
    g_prev = g;
    const double f_prev = f;
    if (res.iterations == 1) {
      double g1 = 0;
      for (double v : g) g1 += std::abs(v);
      t = std::min(1.0, 1.0 / g1) * o.lr;
    } else {
      t = o.lr;
    }
    const double gtd = detail::dot(g, d);
    if (gtd > -o.tolerance_change) break;

    int ls_evals = 0;
    detail::line_point p = detail::strong_wolfe(fn, x, d, t, f, g, gtd, ls_evals);
    t = p.t;
    for (size_t i = 0; i < n; ++i) x[i] += t * d[i];
    f = p.f;
    g = std::move(p.g);
    res.evaluations += ls_evals;
    res.loss = f;
    check<numeric_error>(std::isfinite(f), "lbfgs: objective became non-finite (", f, ") at iteration ",
                         res.iterations);

    if (res.iterations == o.max_iter) break;
    if (res.evaluations >= max_eval) break;
    if (detail::abs_max(g) <= o.tolerance_grad) break;
    if (std::abs(t) * detail::abs_max(d) <= o.tolerance_change) break;
    if (std::abs(f - f_prev) < o.tolerance_change) break;
  }
  return res;
}

}  // namespace ssl::eval
