#pragma once
// Rotation prediction (RotNet, Gidaris et al. 2018): the label of an image rotated by k * 90
// degrees counter-clockwise is k in {0, 1, 2, 3}.
//   rotate90(img, k): img (C, H, W) -> (C, H, W) for even k, (C, W, H) for odd k, exactly
//   torch.rot90(img, k, dims=(1, 2)):
//     k = 1: out[c, i, j] = img[c, j, W-1-i]     k = 2: out[c, i, j] = img[c, H-1-i, W-1-j]
//     k = 3: out[c, i, j] = img[c, H-1-j, i]
//   rotation_batch(x): x (N, C, S, S) -> the four rotations of each image, (4N, C, S, S) with
//   row 4n + k holding image n rotated by k, and labels[4n + k] = k.
// (ssl::augment::right_angle_rotation draws a random k as an augmentation; this is the labelled task.)
#include <cstdint>
#include <vector>

#include "../core/parallel.hpp"
#include "../tensor/tensor.hpp"

namespace ssl::pretext {

namespace detail {
/// Rotates one (H, W) plane by k * 90 degrees counter-clockwise into dst.
inline void rotate_plane(const float* src, float* dst, int64_t H, int64_t W, int k) {
  const int64_t OW = (k % 2) ? H : W;  // output width
  const int64_t OH = (k % 2) ? W : H;
  for (int64_t i = 0; i < OH; ++i)
    for (int64_t j = 0; j < OW; ++j) {
      int64_t y, x;
      switch (k) {
        case 0: y = i, x = j; break;
        case 1: y = j, x = W - 1 - i; break;
        case 2: y = H - 1 - i, x = W - 1 - j; break;
        default: y = H - 1 - j, x = i; break;
      }
      dst[i * OW + j] = src[y * W + x];
    }
}
inline int normalise_k(int k) { return ((k % 4) + 4) % 4; }
}  // namespace detail

/// img (C, H, W) rotated by k * 90 degrees counter-clockwise (any integer k, taken mod 4).
inline tensor<cpu> rotate90(const tensor<cpu>& img, int k) {
  expect_rank(img, 3, "rotate90 image (C, H, W)");
  k = detail::normalise_k(k);
  const int64_t C = img.dim(0), H = img.dim(1), W = img.dim(2);
  tensor<cpu> out((k % 2) ? shape{C, W, H} : shape{C, H, W});
  for (int64_t c = 0; c < C; ++c) detail::rotate_plane(img.data() + c * H * W, out.data() + c * H * W, H, W, k);
  return out;
}

struct rotation_batch_result {
  tensor<cpu> images;           // (4N, C, S, S)
  std::vector<int64_t> labels;  // 4N rotation classes
};

/// The four rotations of each square image of x (N, C, S, S), labelled by k.
inline rotation_batch_result rotation_batch(const tensor<cpu>& x) {
  expect_rank(x, 4, "rotation_batch images (N, C, S, S)");
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  check<shape_error>(H == W, "rotation_batch: images must be square to stack their rotations, got H = ", H,
                     ", W = ", W);
  rotation_batch_result r{tensor<cpu>(shape{4 * N, C, H, W}), std::vector<int64_t>(size_t(4 * N))};
  const int64_t plane = H * W;
  parallel_for(0, 4 * N * C, [&](int64_t idx) {
    const int64_t c = idx % C, row = idx / C, n = row / 4;
    const int k = int(row % 4);
    detail::rotate_plane(x.data() + (n * C + c) * plane, r.images.data() + idx * plane, H, W, k);
  });
  for (int64_t row = 0; row < 4 * N; ++row) r.labels[size_t(row)] = row % 4;
  return r;
}

}  // namespace ssl::pretext
