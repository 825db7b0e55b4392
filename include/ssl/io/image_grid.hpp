#pragma once
// make_grid: lays images out in a padded grid (for looking at augmentations, reconstructions,
// attention maps in the examples). Same layout as torchvision.utils.make_grid:
//   cols = min(nrow, n), rows = ceil(n / cols), cell = (H + padding) x (W + padding),
//   grid (C, rows * (H + padding) + padding, cols * (W + padding) + padding) filled with pad_value,
//   image k at row k / cols, column k % cols, offset by `padding`.
// Unlike torchvision, single-channel images stay single-channel; a mix of 1- and 3-channel
// images is promoted to 3 channels.
#include <algorithm>
#include <vector>

#include "../core/error.hpp"
#include "../tensor/tensor.hpp"

namespace ssl::io {

/// images: n tensors (C, H, W) of one size; returns one (C', H', W') image.
inline tensor<cpu> make_grid(const std::vector<tensor<cpu>>& images, int nrow = 8, int padding = 2,
                             float pad_value = 0.0f) {
  check<value_error>(!images.empty(), "make_grid: expected at least one image, got none");
  check<value_error>(nrow >= 1, "make_grid: nrow must be >= 1, got ", nrow);
  check<value_error>(padding >= 0, "make_grid: padding must be >= 0, got ", padding);
  const auto& first = images.front();
  check<shape_error>(first.rank() == 3, "make_grid: expected images of shape (C, H, W), image 0 has shape ", first.shape());
  const int64_t H = first.dim(1), W = first.dim(2);
  int64_t C = 0;
  for (size_t k = 0; k < images.size(); ++k) {
    const auto& im = images[k];
    check<shape_error>(im.rank() == 3 && im.dim(1) == H && im.dim(2) == W, "make_grid: expected every image to be (C, ", H,
                       ", ", W, ") like image 0, image ", k, " has shape ", im.shape());
    C = std::max(C, im.dim(0));
  }
  for (size_t k = 0; k < images.size(); ++k) {
    const int64_t c = images[k].dim(0);
    check<shape_error>(c == C || c == 1, "make_grid: image ", k, " has ", c, " channels, expected ", C,
                       " (or 1, which is broadcast)");
  }
  const int64_t n = int64_t(images.size());
  const int64_t cols = std::min<int64_t>(nrow, n), rows = (n + cols - 1) / cols;
  const int64_t cell_h = H + padding, cell_w = W + padding;
  const int64_t GH = rows * cell_h + padding, GW = cols * cell_w + padding;
  tensor<cpu> grid(shape{C, GH, GW}, pad_value);
  for (int64_t k = 0; k < n; ++k) {
    const auto& im = images[size_t(k)];
    const int64_t y0 = (k / cols) * cell_h + padding, x0 = (k % cols) * cell_w + padding;
    for (int64_t c = 0; c < C; ++c) {
      const float* src = im.data() + (im.dim(0) == 1 ? 0 : c) * H * W;
      for (int64_t y = 0; y < H; ++y) std::copy_n(src + y * W, W, grid.data() + (c * GH + y0 + y) * GW + x0);
    }
  }
  return grid;
}

}  // namespace ssl::io
