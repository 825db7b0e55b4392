#pragma once
// Cross-entropy against probability targets, as torch F.cross_entropy(logits, target_probs,
// label_smoothing=eps) (mean reduction) and timm's SoftTargetCrossEntropy: the loss of the
// mixup / cutmix targets (augment/mixup_cutmix.hpp) in DeiT's / MAE's fine-tuning recipe.
// logits: (N, C), targets: (N, C) with entries >= 0 (rows need not sum to 1).
//   t' = (1 - eps) t + eps / C             (label smoothing, row by row; t' = t when eps = 0)
//   L = -1/N sum_i sum_c t'_ic log_softmax(x_i)_c = 1/N sum_i sum_c t'_ic (lse(x_i) - x_ic)
// Gradient: d x_i = (s_i softmax(x_i) - t'_i) / N,  s_i = sum_c t'_ic.
// With one-hot targets it equals ssl::cross_entropy (same smoothing) on the targets' labels.
#include <vector>

#include "cross_entropy.hpp"

namespace ssl {

class soft_cross_entropy {
 public:
  explicit soft_cross_entropy(float label_smoothing = 0.0f) : smoothing_(label_smoothing) {
    check<value_error>(label_smoothing >= 0.0f && label_smoothing <= 1.0f,
                       "soft_cross_entropy label_smoothing: expected a value in [0, 1], got ", label_smoothing);
  }
  float label_smoothing() const { return smoothing_; }

  // logits: (N, C), targets: (N, C) -> value and grad_logits (N, C)
  cross_entropy_result operator()(const tensor<cpu>& logits, const tensor<cpu>& targets) const {
    check<shape_error>(logits.rank() == 2 && logits.dim(0) > 0 && logits.dim(1) > 0,
                       "soft_cross_entropy logits: expected non-empty (N, C), got ", logits.shape());
    check<shape_error>(targets.shape() == logits.shape(), "soft_cross_entropy targets: expected the logits' shape ",
                       logits.shape(), ", got ", targets.shape());
    const int64_t N = logits.dim(0), C = logits.dim(1);
    for (int64_t k = 0; k < targets.numel(); ++k)
      check<value_error>(std::isfinite(targets[k]) && targets[k] >= 0.0f,
                         "soft_cross_entropy targets: expected finite values >= 0, got ", targets[k], " at row ", k / C,
                         " class ", k % C);

    cross_entropy_result res;
    res.grad_logits = tensor<cpu>(logits.shape());
    std::vector<double> row_loss(static_cast<size_t>(N));
    const float keep = 1.0f - smoothing_, add = smoothing_ / float(C), inv_n = 1.0f / float(N);
    parallel_for(0, N, [&](int64_t i) {
      const float* x = logits.data() + i * C;
      const float* t = targets.data() + i * C;
      float* d = res.grad_logits.data() + i * C;
      std::copy_n(x, C, d);
      const double lse = losses_detail::softmax_inplace(d, C);  // d = softmax(x_i)
      double loss = 0, mass = 0;
      for (int64_t c = 0; c < C; ++c) {
        const double tc = double(keep) * t[c] + add;  // t'_ic
        loss += tc * (lse - double(x[c]));
        mass += tc;
      }
      row_loss[size_t(i)] = loss;
      const float s = float(mass);
      for (int64_t c = 0; c < C; ++c) d[c] = (s * d[c] - (keep * t[c] + add)) * inv_n;
    }, 16);
    res.value = float(losses_detail::ordered_sum(row_loss) / double(N));
    return res;
  }

 private:
  float smoothing_ = 0.0f;
};

}  // namespace ssl
