#pragma once
// Colorization (Zhang, Isola & Efros 2016): predict the ab channels of CIE Lab from L, as a
// classification over quantized ab bins, with soft targets and class rebalancing.
//
//   rgb_to_lab(img (3, H, W), sRGB in [0, 1]) -> (3, H, W) L in [0, 100], a, b
//   lab_to_rgb(lab (3, H, W)) -> (3, H, W) sRGB clipped to [0, 1]
//     sRGB (D65) as skimage.color.rgb2lab: linearise (c <= 0.04045 ? c/12.92 : ((c+0.055)/1.055)^2.4),
//     XYZ = M rgb, divide by the D65 white (0.95047, 1, 1.08883), f(t) = t > 0.008856 ? cbrt(t)
//     : 7.787 t + 16/116, L = 116 f(Y) - 16, a = 500 (f(X) - f(Y)), b = 200 (f(Y) - f(Z)).
//   ab_quantizer: bins of a grid of step 10 centred on multiples of 10, keeping the bins hit by
//     a dense sampling of the RGB cube (the in-gamut bins; Zhang et al. have 313).
//     hard_encode: nearest bin; soft_encode: the 5 nearest bins weighted exp(-d^2 / (2 sigma^2)),
//     sigma = 5, normalised to sum 1.
//   rebalancing_weights(p): p the empirical bin distribution; p~ = p smoothed by a Gaussian
//     (sigma 5) over the bin centres; w ~ 1 / ((1 - lambda) p~ + lambda / Q), lambda = 0.5,
//     scaled so that sum_q p~_q w_q = 1 (expected weight 1).
#include <Eigen/Dense>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "../core/parallel.hpp"
#include "../tensor/tensor.hpp"

namespace ssl::pretext {

namespace detail {
// sRGB (linear) -> XYZ, D65 (as skimage's xyz_from_rgb).
inline const Eigen::Matrix3d& xyz_from_rgb() {
  static const Eigen::Matrix3d m = (Eigen::Matrix3d() << 0.412453, 0.357580, 0.180423,  //
                                    0.212671, 0.715160, 0.072169,                        //
                                    0.019334, 0.119193, 0.950227)
                                       .finished();
  return m;
}
inline const Eigen::Matrix3d& rgb_from_xyz() {
  static const Eigen::Matrix3d m = xyz_from_rgb().inverse();
  return m;
}
inline constexpr std::array<double, 3> d65_white{0.95047, 1.0, 1.08883};

inline double srgb_to_linear(double c) { return c <= 0.04045 ? c / 12.92 : std::pow((c + 0.055) / 1.055, 2.4); }
inline double linear_to_srgb(double c) { return c <= 0.0031308 ? 12.92 * c : 1.055 * std::pow(c, 1.0 / 2.4) - 0.055; }
inline double lab_f(double t) { return t > 0.008856 ? std::cbrt(t) : 7.787 * t + 16.0 / 116.0; }
inline double lab_f_inv(double t) { return t > 0.2068966 ? t * t * t : (t - 16.0 / 116.0) / 7.787; }

inline std::array<double, 3> rgb_to_lab(double r, double g, double b) {
  const Eigen::Vector3d xyz = xyz_from_rgb() * Eigen::Vector3d(srgb_to_linear(r), srgb_to_linear(g), srgb_to_linear(b));
  const double fx = lab_f(xyz[0] / d65_white[0]), fy = lab_f(xyz[1] / d65_white[1]), fz = lab_f(xyz[2] / d65_white[2]);
  return {116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)};
}
inline std::array<double, 3> lab_to_rgb(double L, double a, double b) {
  const double fy = (L + 16.0) / 116.0, fx = fy + a / 500.0, fz = std::max(0.0, fy - b / 200.0);
  const Eigen::Vector3d xyz(lab_f_inv(fx) * d65_white[0], lab_f_inv(fy) * d65_white[1], lab_f_inv(fz) * d65_white[2]);
  const Eigen::Vector3d lin = rgb_from_xyz() * xyz;
  std::array<double, 3> out;
  for (int c = 0; c < 3; ++c) out[size_t(c)] = std::clamp(linear_to_srgb(std::max(0.0, lin[c])), 0.0, 1.0);
  return out;
}

template <class F>
tensor<cpu> map_pixels(const tensor<cpu>& img, const char* what, F&& f) {
  expect_rank(img, 3, what);
  check<shape_error>(img.dim(0) == 3, what, ": expected 3 channels, got shape ", img.shape());
  const int64_t P = img.dim(1) * img.dim(2);
  tensor<cpu> out(img.shape());
  const float* s = img.data();
  float* d = out.data();
  parallel_for(0, P, [&](int64_t i) {
    const auto v = f(double(s[i]), double(s[P + i]), double(s[2 * P + i]));
    d[i] = float(v[0]);
    d[P + i] = float(v[1]);
    d[2 * P + i] = float(v[2]);
  }, 4096);
  return out;
}
}  // namespace detail

/// img (3, H, W) sRGB in [0, 1] -> (3, H, W) CIE Lab (D65).
inline tensor<cpu> rgb_to_lab(const tensor<cpu>& img) {
  return detail::map_pixels(img, "rgb_to_lab image (3, H, W)", [](double r, double g, double b) { return detail::rgb_to_lab(r, g, b); });
}
/// lab (3, H, W) CIE Lab (D65) -> (3, H, W) sRGB clipped to [0, 1].
inline tensor<cpu> lab_to_rgb(const tensor<cpu>& lab) {
  return detail::map_pixels(lab, "lab_to_rgb image (3, H, W)", [](double L, double a, double b) { return detail::lab_to_rgb(L, a, b); });
}

struct rebalancing {
  tensor<cpu> weights;   // (Q) per-bin loss weights
  tensor<cpu> smoothed;  // (Q) the smoothed empirical distribution p~
};

class ab_quantizer {
 public:
  /// The in-gamut bins: ab cells hit by levels^3 colours sampled on a regular grid of the RGB cube.
  static ab_quantizer from_gamut(int levels = 64, float step = 10.0f) {
    check(levels >= 2, "ab_quantizer::from_gamut: levels must be >= 2, got ", levels);
    check(step > 0, "ab_quantizer::from_gamut: step must be > 0, got ", step);
    const int cells = 2 * int(std::ceil(130.0 / step)) + 1;  // |a|, |b| < 130 in sRGB
    const int half = cells / 2;
    std::vector<uint8_t> hit(size_t(cells) * cells, 0);
    for (int r = 0; r < levels; ++r)
      for (int g = 0; g < levels; ++g)
        for (int b = 0; b < levels; ++b) {
          const auto lab = detail::rgb_to_lab(double(r) / (levels - 1), double(g) / (levels - 1), double(b) / (levels - 1));
          const int ia = int(std::lround(lab[1] / step)) + half, ib = int(std::lround(lab[2] / step)) + half;
          hit[size_t(ia) * cells + ib] = 1;
        }
    std::vector<std::array<float, 2>> centres;
    for (int ia = 0; ia < cells; ++ia)
      for (int ib = 0; ib < cells; ++ib)
        if (hit[size_t(ia) * cells + ib]) centres.push_back({float(ia - half) * step, float(ib - half) * step});
    return ab_quantizer(std::move(centres), step);
  }

  /// Bins with the given (a, b) centres, on a grid of `step` (centres must be multiples of step).
  ab_quantizer(std::vector<std::array<float, 2>> centres, float step) : centres_(std::move(centres)), step_(step) {
    check(!centres_.empty(), "ab_quantizer: needs at least one bin");
    check(step > 0, "ab_quantizer: step must be > 0, got ", step);
    int extent = 0;
    for (const auto& c : centres_)
      extent = std::max({extent, int(std::lround(std::abs(c[0]) / step)), int(std::lround(std::abs(c[1]) / step))});
    half_ = extent + 1;
    cells_ = 2 * half_ + 1;
    lookup_.assign(size_t(cells_) * cells_, -1);
    for (size_t q = 0; q < centres_.size(); ++q) {
      const int ia = int(std::lround(centres_[q][0] / step)) + half_, ib = int(std::lround(centres_[q][1] / step)) + half_;
      check(std::abs(centres_[q][0] - float(ia - half_) * step) < 1e-3f * step &&
                std::abs(centres_[q][1] - float(ib - half_) * step) < 1e-3f * step,
            "ab_quantizer: bin centre (", centres_[q][0], ", ", centres_[q][1], ") is not on the grid of step ", step);
      lookup_[size_t(ia) * cells_ + ib] = int32_t(q);
    }
  }

  /// Largest number of neighbours soft_encode supports.
  static constexpr int max_k = 32;

  int64_t bins() const { return int64_t(centres_.size()); }
  const std::vector<std::array<float, 2>>& centres() const { return centres_; }
  float step() const { return step_; }

  /// Index of the bin nearest to (a, b).
  int64_t hard_encode(float a, float b) const {
    const int ia = int(std::lround(a / step_)) + half_, ib = int(std::lround(b / step_)) + half_;
    if (ia >= 0 && ia < cells_ && ib >= 0 && ib < cells_ && lookup_[size_t(ia) * cells_ + ib] >= 0)
      return lookup_[size_t(ia) * cells_ + ib];
    int64_t best = 0;
    float best_d = std::numeric_limits<float>::max();
    for (size_t q = 0; q < centres_.size(); ++q) {
      const float d = sq_dist(q, a, b);
      if (d < best_d) best_d = d, best = int64_t(q);
    }
    return best;
  }
  /// Nearest bin of each pixel of ab (2, H, W); H*W labels, row-major.
  std::vector<int64_t> hard_encode(const tensor<cpu>& ab) const {
    const int64_t P = check_ab(ab, "ab_quantizer::hard_encode");
    std::vector<int64_t> out(static_cast<size_t>(P));
    parallel_for(0, P, [&](int64_t i) { out[size_t(i)] = hard_encode(ab.data()[i], ab.data()[P + i]); }, 4096);
    return out;
  }
  /// Soft targets of ab (2, H, W): (Q, H, W), the k nearest bins weighted by a Gaussian of
  /// their distance (sigma), summing to 1 at each pixel.
  tensor<cpu> soft_encode(const tensor<cpu>& ab, int k = 5, float sigma = 5.0f) const {
    const int64_t P = check_ab(ab, "ab_quantizer::soft_encode");
    check(k >= 1 && k <= std::min<int64_t>(bins(), max_k), "ab_quantizer::soft_encode: k must be in [1, ",
          std::min<int64_t>(bins(), max_k), "], got ", k);
    check(sigma > 0, "ab_quantizer::soft_encode: sigma must be > 0, got ", sigma);
    tensor<cpu> out = tensor<cpu>::zeros(shape{bins(), ab.dim(1), ab.dim(2)});
    parallel_for(0, P, [&](int64_t i) {
      const float a = ab.data()[i], b = ab.data()[P + i];
      // the k nearest bins, kept sorted by distance (insertion into a small array)
      std::array<std::pair<float, int32_t>, max_k> near;
      int found = 0;
      for (size_t q = 0; q < centres_.size(); ++q) {
        const float d = sq_dist(q, a, b);
        if (found == k && d >= near[size_t(k - 1)].first) continue;
        int j = found < k ? found++ : k - 1;
        for (; j > 0 && near[size_t(j - 1)].first > d; --j) near[size_t(j)] = near[size_t(j - 1)];
        near[size_t(j)] = {d, int32_t(q)};
      }
      std::array<double, max_k> w{};
      double total = 0;
      for (int j = 0; j < k; ++j) total += w[size_t(j)] = std::exp(-double(near[size_t(j)].first) / (2.0 * sigma * sigma));
      for (int j = 0; j < k; ++j) out.data()[int64_t(near[size_t(j)].second) * P + i] = float(w[size_t(j)] / total);
    }, 256);
    return out;
  }

  /// Class-rebalancing weights from an empirical bin distribution p (Q; counts or
  /// probabilities, normalised here).
  rebalancing rebalancing_weights(const tensor<cpu>& p, float sigma = 5.0f, float lambda = 0.5f) const {
    check<shape_error>(p.numel() == bins(), "ab_quantizer::rebalancing_weights: expected ", bins(),
                       " bin frequencies, got shape ", p.shape());
    check(sigma > 0, "ab_quantizer::rebalancing_weights: sigma must be > 0, got ", sigma);
    check(lambda > 0 && lambda <= 1, "ab_quantizer::rebalancing_weights: lambda must be in (0, 1], got ", lambda);
    const size_t Q = centres_.size();
    double total = 0;
    for (size_t q = 0; q < Q; ++q) {
      check(p[int64_t(q)] >= 0, "ab_quantizer::rebalancing_weights: frequencies must be >= 0, got ", p[int64_t(q)]);
      total += p[int64_t(q)];
    }
    check(total > 0, "ab_quantizer::rebalancing_weights: the distribution is empty");
    // p~_q = sum_r p_r G(c_q - c_r), renormalised
    std::vector<double> smooth(Q, 0.0);
    double smooth_total = 0;
    for (size_t q = 0; q < Q; ++q) {
      for (size_t r = 0; r < Q; ++r)
        smooth[q] += p[int64_t(r)] / total *
                     std::exp(-double(sq_dist(q, centres_[r][0], centres_[r][1])) / (2.0 * sigma * sigma));
      smooth_total += smooth[q];
    }
    rebalancing out{tensor<cpu>(shape{int64_t(Q)}), tensor<cpu>(shape{int64_t(Q)})};
    std::vector<double> w(Q);
    double expectation = 0;
    for (size_t q = 0; q < Q; ++q) {
      smooth[q] /= smooth_total;
      w[q] = 1.0 / ((1.0 - lambda) * smooth[q] + lambda / double(Q));
      expectation += smooth[q] * w[q];
    }
    for (size_t q = 0; q < Q; ++q) {
      out.weights[int64_t(q)] = float(w[q] / expectation);
      out.smoothed[int64_t(q)] = float(smooth[q]);
    }
    return out;
  }

  /// Counts of the nearest bins over the pixels of ab (2, H, W), added to `counts` (Q).
  void accumulate_histogram(const tensor<cpu>& ab, tensor<cpu>& counts) const {
    expect_shape(counts, shape{bins()}, "ab_quantizer::accumulate_histogram counts");
    for (int64_t q : hard_encode(ab)) counts[q] += 1.0f;
  }

 private:
  float sq_dist(size_t q, float a, float b) const {
    const float da = centres_[q][0] - a, db = centres_[q][1] - b;
    return da * da + db * db;
  }
  int64_t check_ab(const tensor<cpu>& ab, const char* what) const {
    check<shape_error>(ab.rank() == 3 && ab.dim(0) == 2, what, ": expected ab channels of shape (2, H, W), got ",
                       ab.shape());
    return ab.dim(1) * ab.dim(2);
  }

  std::vector<std::array<float, 2>> centres_;
  float step_;
  int half_ = 0, cells_ = 1;
  std::vector<int32_t> lookup_;  // grid cell -> bin index or -1
};

}  // namespace ssl::pretext
