#pragma once
// MAE's masked reconstruction loss (He et al. 2022, "Masked Autoencoders Are Scalable
// Vision Learners"):
//   pred, target: (N, L, P) per-patch predictions and pixels, mask: (N, L), 1 = masked.
//   With norm_pix, the target is normalised per patch: t' = (t - mean(t)) / sqrt(var(t) + 1e-6),
//   var unbiased (torch's default, as in the official code).
//   e_nl = 1/P sum_p (pred_nlp - t'_nlp)^2,   L = sum_nl mask_nl e_nl / sum_nl mask_nl.
// Gradient: d pred_nlp = 2 mask_nl (pred_nlp - t'_nlp) / (P sum mask). The target is data.
// With reconstruction_error::absolute (SimMIM's L1, Xie et al. 2022) the per-patch error is
//   e_nl = 1/P sum_p |pred_nlp - t'_nlp|,  d pred_nlp = mask_nl sign(pred_nlp - t'_nlp) / (P sum mask)
// (sign(0) = 0, torch's subgradient); SimMIM's sum over masked pixels / (masked pixels x C) is this
// mean over masked patches, every patch having the same P = p p C values.
// MaskFeat's HoG targets use the same loss with the HoG features as `target` (norm_pix off).
// On a device backend (tensor<cuda>, under nvcc) the same loss runs there (backend/cuda/
// masked_reconstruction.cuh); the mask stays a host tensor and the result's `value` is a (1)
// device tensor, so the step never waits for it.
#include <cmath>
#include <concepts>

#include "detail/row_math.hpp"
#include "../core/profile.hpp"

namespace ssl {

/// The per-value error of masked_reconstruction: squared (MAE, MaskFeat) or absolute (SimMIM's L1).
enum class reconstruction_error { squared, absolute };

struct masked_reconstruction_result {
  float value = 0;
  tensor<cpu> grad_pred;  // (N, L, P)
};

namespace losses_detail {
/// Validates masked_reconstruction's inputs, on either backend: pred and target (N, L, P), mask
/// (N, L) of 0/1 on the host with at least one 1, P >= 2 for norm_pix. Returns the mask's sum.
inline double check_masked_reconstruction_inputs(const shape& pred, const shape& target, const tensor<cpu>& mask,
                                                 bool norm_pix) {
  check<shape_error>(pred.rank() == 3 && pred.numel() > 0, "masked_reconstruction pred: expected (N, L, P), got ",
                     pred);
  expect_shape(target, pred, "masked_reconstruction target");
  expect_shape(mask, shape{pred[0], pred[1]}, "masked_reconstruction mask");
  check<shape_error>(!norm_pix || pred[2] >= 2, "masked_reconstruction: norm_pix needs patches of >= 2 values, got P = ",
                     pred[2]);
  double mask_sum = 0;
  for (int64_t r = 0; r < mask.numel(); ++r) {
    check<value_error>(mask[r] == 0.0f || mask[r] == 1.0f, "masked_reconstruction mask: expected 0 or 1, got ", mask[r],
                       " at ", r);
    mask_sum += mask[r];
  }
  check<value_error>(mask_sum > 0, "masked_reconstruction mask: expected at least one masked patch, got none");
  return mask_sum;
}
/// The loss's denominator: sum(mask), or a caller's normaliser when one is given (> 0).
inline double masked_reconstruction_normaliser(double mask_sum, double normaliser) {
  check<value_error>(normaliser >= 0 && std::isfinite(normaliser),
                     "masked_reconstruction normaliser: expected a finite value >= 0 (0: the mask's sum), got ",
                     normaliser);
  return normaliser > 0 ? normaliser : mask_sum;
}
}  // namespace losses_detail

class masked_reconstruction {
 public:
  explicit masked_reconstruction(bool norm_pix = true, float var_eps = 1e-6f,
                                 reconstruction_error error = reconstruction_error::squared)
      : norm_pix_(norm_pix), eps_(var_eps), error_(error) {
    check<value_error>(var_eps >= 0.0f, "masked_reconstruction var_eps: expected >= 0, got ", var_eps);
  }
  /// SimMIM's loss: the L1 error of raw (or, with norm_pix, per-patch normalised) targets.
  static masked_reconstruction l1(bool norm_pix = false, float var_eps = 1e-6f) {
    return masked_reconstruction(norm_pix, var_eps, reconstruction_error::absolute);
  }
  bool norm_pix() const { return norm_pix_; }
  float var_eps() const { return eps_; }
  reconstruction_error error() const { return error_; }
  bool absolute() const { return error_ == reconstruction_error::absolute; }

  // pred: (N, L, P), target: (N, L, P), mask: (N, L) of 0/1. `normaliser` > 0 replaces sum(mask) as
  // the denominator (data-parallel: the masked count of the global batch / the replicas, so images
  // that hide different numbers of patches weigh as in one process on the global batch).
  masked_reconstruction_result operator()(const tensor<cpu>& pred, const tensor<cpu>& target,
                                          const tensor<cpu>& mask, double normaliser = 0) const {
    SSL_PROFILE_SCOPE("mae loss");
    const double mask_sum = losses_detail::masked_reconstruction_normaliser(
        losses_detail::check_masked_reconstruction_inputs(pred.shape(), target.shape(), mask, norm_pix_), normaliser);
    const int64_t R = pred.dim(0) * pred.dim(1), P = pred.dim(2);

    masked_reconstruction_result res;
    res.grad_pred = tensor<cpu>(pred.shape());
    std::vector<double> row_err(size_t(R), 0.0);
    const bool l1 = absolute();
    const float g = float((l1 ? 1.0 : 2.0) / (double(P) * mask_sum));
    parallel_for(0, R, [&](int64_t r) {
      const float* x = pred.data() + r * P;
      const float* t = target.data() + r * P;
      float* d = res.grad_pred.data() + r * P;
      if (mask[r] == 0.0f) {
        std::fill_n(d, P, 0.0f);
        return;
      }
      double mean = 0, inv_std = 1;
      if (norm_pix_) {
        for (int64_t p = 0; p < P; ++p) mean += t[p];
        mean /= double(P);
        double var = 0;
        for (int64_t p = 0; p < P; ++p) var += (t[p] - mean) * (t[p] - mean);
        inv_std = 1.0 / std::sqrt(var / double(P - 1) + double(eps_));
      }
      double e = 0;
      for (int64_t p = 0; p < P; ++p) {
        const double diff = double(x[p]) - (norm_pix_ ? (t[p] - mean) * inv_std : double(t[p]));
        if (l1) {
          const double sgn = double((diff > 0) - (diff < 0));
          e += std::abs(diff);
          d[p] = float(g * sgn);
        } else {
          e += diff * diff;
          d[p] = float(g * diff);
        }
      }
      row_err[size_t(r)] = e / double(P);
    }, 64);
    res.value = float(losses_detail::ordered_sum(row_err) / mask_sum);
    return res;
  }
  // pred, target: (N, L, P) on a device backend; mask: (N, L) on the host.
  template <class B>
    requires(!std::same_as<B, cpu>)
  auto operator()(const tensor<B>& pred, const tensor<B>& target, const tensor<cpu>& mask,
                  double normaliser = 0) const {
    return device_masked_reconstruction(*this, pred, target, mask, normaliser);
  }

 private:
  bool norm_pix_ = true;
  float eps_ = 1e-6f;
  reconstruction_error error_ = reconstruction_error::squared;
};

}  // namespace ssl

#if defined(__CUDACC__)
#include "../backend/cuda/masked_reconstruction.cuh"
#endif
