#pragma once
// Greyscale (torchvision Grayscale(num_output_channels=3)): every channel of an RGB image becomes
// its luma 0.2989 R + 0.587 G + 0.114 B, so the channel count is kept. Non-RGB images pass
// through unchanged. Wrap in random_apply for RandomGrayscale(p).
#include "color.hpp"

namespace ssl::augment {

struct grayscale {
  struct params {};
  params draw(const tensor<cpu>&, rng&) const { return {}; }
  tensor<cpu> apply(const tensor<cpu>& img, const params& = {}) const {
    detail::check_image(img, "grayscale");
    return to_grayscale(img, int(img.dim(0)));
  }
  tensor<cpu> operator()(const tensor<cpu>& img, rng&) const { return apply(img); }
};

}  // namespace ssl::augment
