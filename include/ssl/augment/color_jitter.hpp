#pragma once
// Colour jitter (torchvision ColorJitter): brightness, contrast, saturation and hue factors drawn
// uniformly from [max(0, 1-b), 1+b], [max(0, 1-c), 1+c], [max(0, 1-s), 1+s], [-h, h], applied in a
// random order. Saturation and hue act on RGB images only (other channel counts skip them).
#include <algorithm>
#include <array>

#include "color.hpp"

namespace ssl::augment {

struct color_jitter {
  float brightness = 0.4f, contrast = 0.4f, saturation = 0.4f, hue = 0.1f;

  enum class step : int { brightness = 0, contrast = 1, saturation = 2, hue = 3 };
  struct params {
    std::array<step, 4> order{step::brightness, step::contrast, step::saturation, step::hue};
    float brightness = 1, contrast = 1, saturation = 1, hue = 0;
  };

  params draw(const tensor<cpu>&, rng& g) const {
    check<value_error>(brightness >= 0 && contrast >= 0 && saturation >= 0,
                       "color_jitter: expected non-negative brightness/contrast/saturation strengths, got ", brightness,
                       ", ", contrast, ", ", saturation);
    check<value_error>(hue >= 0 && hue <= 0.5f, "color_jitter: expected a hue strength in [0, 0.5], got ", hue);
    params p;
    for (int i = 3; i > 0; --i) std::swap(p.order[i], p.order[g.below(uint32_t(i + 1))]);  // Fisher-Yates
    auto factor = [&](float strength) { return strength > 0 ? g.uniform(std::max(0.0f, 1 - strength), 1 + strength) : 1.0f; };
    p.brightness = factor(brightness);
    p.contrast = factor(contrast);
    p.saturation = factor(saturation);
    p.hue = hue > 0 ? g.uniform(-hue, hue) : 0.0f;
    return p;
  }

  /// The four adjustments in p.order; identity factors are skipped.
  tensor<cpu> apply(const tensor<cpu>& img, const params& p) const {
    detail::check_image(img, "color_jitter");
    tensor<cpu> out = img;
    for (step s : p.order) {
      switch (s) {
        case step::brightness: if (p.brightness != 1) out = adjust_brightness(out, p.brightness); break;
        case step::contrast: if (p.contrast != 1) out = adjust_contrast(out, p.contrast); break;
        case step::saturation: if (p.saturation != 1) out = adjust_saturation(out, p.saturation); break;
        case step::hue: if (p.hue != 0) out = adjust_hue(out, p.hue); break;
      }
    }
    return out;
  }
  tensor<cpu> operator()(const tensor<cpu>& img, rng& g) const { return apply(img, draw(img, g)); }
};

}  // namespace ssl::augment
