#pragma once
// Class-balanced labelled subsets, for semi-supervised evaluation: fine-tune or probe on a small
// fraction of the labels (SimCLR's and BYOL's 1% / 10% ImageNet protocol), test on the full test set.
//
//   auto few = ssl::eval::class_balanced_subset(train.images(), train.labels(), 0.01, seed);
//   // few.images (n, C, H, W), few.labels (n), few.indices (n, ascending rows of the train set)
//
// Class c with n_c examples keeps k_c = max(1, round(fraction * n_c)) of them, drawn without
// replacement by a partial Fisher-Yates shuffle from rng(seed).fork(c): the same seed gives the same
// subset, and a class's draw does not depend on the other classes.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "../core/error.hpp"
#include "../core/rng.hpp"
#include "../tensor/tensor.hpp"
#include "labels.hpp"

namespace ssl::eval {

struct labelled_subset {
  tensor<cpu> images;            // (n, C, H, W), the chosen rows in ascending order
  std::vector<int> labels;       // (n)
  std::vector<int64_t> indices;  // rows of the source, ascending
};

inline labelled_subset class_balanced_subset(const tensor<cpu>& images, std::span<const int> labels, double fraction,
                                             uint64_t seed) {
  check<shape_error>(images.rank() == 4, "class_balanced_subset: expected images (N, C, H, W), got shape ",
                     images.shape());
  const int64_t N = images.dim(0);
  check<shape_error>(int64_t(labels.size()) == N, "class_balanced_subset: expected ", N,
                     " labels (one per image), got ", labels.size());
  check<value_error>(fraction > 0.0 && fraction <= 1.0, "class_balanced_subset: expected a fraction in (0, 1], got ",
                     fraction);
  const int K = detail::max_label(labels, "class_balanced_subset labels") + 1;
  std::vector<std::vector<int64_t>> members(static_cast<size_t>(K));
  for (int64_t i = 0; i < N; ++i) members[size_t(labels[size_t(i)])].push_back(i);

  labelled_subset out;
  for (int c = 0; c < K; ++c) {
    std::vector<int64_t>& m = members[size_t(c)];
    if (m.empty()) continue;
    const int64_t n = int64_t(m.size());
    const int64_t k = std::clamp<int64_t>(int64_t(std::llround(fraction * double(n))), 1, n);
    rng g = rng(seed).fork(uint64_t(c));
    for (int64_t j = 0; j < k; ++j) std::swap(m[size_t(j)], m[size_t(j + int64_t(g.below(uint32_t(n - j))))]);
    out.indices.insert(out.indices.end(), m.begin(), m.begin() + k);
  }
  std::sort(out.indices.begin(), out.indices.end());

  const int64_t n = int64_t(out.indices.size()), row = images.numel() / N;
  out.images = tensor<cpu>(shape{n, images.dim(1), images.dim(2), images.dim(3)});
  out.labels.resize(size_t(n));
  for (int64_t j = 0; j < n; ++j) {
    const int64_t i = out.indices[size_t(j)];
    std::memcpy(out.images.data() + j * row, images.data() + i * row, size_t(row) * sizeof(float));
    out.labels[size_t(j)] = labels[size_t(i)];
  }
  return out;
}

/// Same, with labels given as std::vector<int> (the datasets' labels()).
inline labelled_subset class_balanced_subset(const tensor<cpu>& images, const std::vector<int>& labels, double fraction,
                                             uint64_t seed) {
  return class_balanced_subset(images, std::span<const int>(labels), fraction, seed);
}

}  // namespace ssl::eval
