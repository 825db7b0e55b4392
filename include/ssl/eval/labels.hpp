#pragma once
// Class-label helpers shared by the evaluators: validation and top-1 accuracy.
#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "../core/error.hpp"

namespace ssl::eval::detail {

/// Largest label (labels must be non-empty and non-negative).
inline int max_label(std::span<const int> labels, const char* what) {
  check<shape_error>(!labels.empty(), what, ": expected at least one label, got none");
  int m = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    check(labels[i] >= 0, what, ": labels must be >= 0, found ", labels[i], " at index ", i);
    m = std::max(m, labels[i]);
  }
  return m;
}

/// Throws value_error unless every label lies in [0, num_classes).
inline void check_labels(std::span<const int> labels, int num_classes, const char* what) {
  for (size_t i = 0; i < labels.size(); ++i)
    check(labels[i] >= 0 && labels[i] < num_classes, what, ": expected labels in [0, ", num_classes, "), found ",
          labels[i], " at index ", i);
}

/// Fraction of positions where pred == truth (0 for empty input).
inline double accuracy(const std::vector<int>& pred, std::span<const int> truth) {
  if (truth.empty()) return 0.0;
  int64_t hits = 0;
  for (size_t i = 0; i < truth.size(); ++i) hits += pred[i] == truth[i];
  return double(hits) / double(truth.size());
}

}  // namespace ssl::eval::detail
