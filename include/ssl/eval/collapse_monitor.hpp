#pragma once
// Representation-collapse checks.
//  * Embedding spread: z: (N, D) rows L2-normalised, s_j = std_i(z_ij) (unbiased), s = mean_j s_j.
//    Healthy (isotropic) embeddings give s ~ 1/sqrt(D); a collapsed one (every row the same)
//    gives s ~ 0. Collapse is flagged when s < fraction / sqrt(D) (fraction 0.1 by default).
//  * DINO loss: when student and teacher both output the uniform distribution over K
//    prototypes the cross-entropy is exactly ln K; a loss stuck within `tolerance` of ln K
//    (relative) is flagged.
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../tensor/tensor.hpp"

namespace ssl::eval {

struct collapse_report {
  double value = 0;      // measured: mean per-dimension std (embeddings) or the loss (DINO)
  double reference = 0;  // healthy / collapsed reference: 1/sqrt(D) or ln K
  double ratio = 0;      // value / reference
  bool collapsed = false;
  std::string message;
};

/// Spread of the L2-normalised rows of z: (N, D), N >= 2.
inline collapse_report embedding_collapse(const tensor<cpu>& z, double fraction = 0.1) {
  expect_rank(z, 2, "embedding_collapse embeddings");
  const int64_t n = z.dim(0), dim = z.dim(1);
  check<shape_error>(n >= 2 && dim >= 1, "embedding_collapse: expected at least 2 rows and 1 column, got shape ",
                     z.shape());
  check(fraction > 0 && fraction <= 1, "embedding_collapse: fraction must be in (0, 1], got ", fraction);
  std::vector<double> s(size_t(dim), 0.0), s2(size_t(dim), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    const float* r = z.data() + i * dim;
    double norm2 = 0;
    for (int64_t j = 0; j < dim; ++j) norm2 += double(r[j]) * r[j];
    check<numeric_error>(std::isfinite(norm2), "embedding_collapse: row ", i, " is not finite");
    const double inv = 1.0 / std::max(std::sqrt(norm2), 1e-12);
    for (int64_t j = 0; j < dim; ++j) {
      const double v = r[j] * inv;
      s[j] += v;
      s2[j] += v * v;
    }
  }
  double mean_std = 0;
  for (int64_t j = 0; j < dim; ++j) {
    const double mu = s[j] / double(n);
    mean_std += std::sqrt(std::max(0.0, (s2[j] - double(n) * mu * mu) / double(n - 1)));
  }
  mean_std /= double(dim);
  collapse_report r;
  r.value = mean_std;
  r.reference = 1.0 / std::sqrt(double(dim));
  r.ratio = r.value / r.reference;
  r.collapsed = r.ratio < fraction;
  std::ostringstream os;
  os << "embedding std " << r.value << " per dimension vs 1/sqrt(" << dim << ") = " << r.reference << " (ratio "
     << r.ratio << "): " << (r.collapsed ? "COLLAPSED (ratio below " : "ok (collapse below ") << fraction << ")";
  r.message = os.str();
  return r;
}

/// DINO-style check: a loss within tolerance * ln K of ln K (K = output dimension) signals collapse.
inline collapse_report dino_loss_collapse(double loss, int64_t out_dim, double tolerance = 0.01) {
  check(out_dim >= 2, "dino_loss_collapse: out_dim must be >= 2, got ", out_dim);
  check(tolerance > 0, "dino_loss_collapse: tolerance must be > 0, got ", tolerance);
  check<numeric_error>(std::isfinite(loss), "dino_loss_collapse: loss is not finite (", loss, ")");
  collapse_report r;
  r.value = loss;
  r.reference = std::log(double(out_dim));
  r.ratio = loss / r.reference;
  r.collapsed = std::abs(loss - r.reference) <= tolerance * r.reference;
  std::ostringstream os;
  os << "DINO loss " << loss << " vs ln(" << out_dim << ") = " << r.reference << " (ratio " << r.ratio << "): "
     << (r.collapsed ? "COLLAPSED (uniform outputs)" : "ok");
  r.message = os.str();
  return r;
}

/// Throws numeric_error with the report's message when it flags collapse.
inline void throw_if_collapsed(const collapse_report& r) {
  check<numeric_error>(!r.collapsed, "representation collapse: ", r.message);
}

}  // namespace ssl::eval
