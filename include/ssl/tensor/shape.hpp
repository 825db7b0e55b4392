#pragma once
// Tensor shape: up to 6 dimensions, row-major (last index fastest).
// Conventions: images NCHW, tokens (B, T, C), features (B, D).
#include <array>
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <sstream>
#include <string>

#include "../core/error.hpp"

namespace ssl {

class shape {
 public:
  static constexpr int max_rank = 6;

  shape() = default;
  shape(std::initializer_list<int64_t> dims) {
    check<shape_error>(dims.size() <= max_rank, "shape: rank ", dims.size(), " exceeds ", max_rank);
    for (int64_t d : dims) push_back(d);
  }
  template <class It>
  shape(It first, It last) {
    for (; first != last; ++first) push_back(int64_t(*first));
  }

  void push_back(int64_t d) {
    check<shape_error>(rank_ < max_rank, "shape: rank exceeds ", max_rank);
    check<shape_error>(d >= 0, "shape: negative dimension ", d);
    dims_[rank_++] = d;
  }

  int rank() const { return rank_; }
  /// Dimension i; negative i counts from the end (-1 is the last).
  int64_t operator[](int i) const {
    const int j = i < 0 ? i + rank_ : i;
    check<shape_error>(j >= 0 && j < rank_, "shape", *this, ": no dimension ", i);
    return dims_[j];
  }
  int64_t& operator[](int i) {
    const int j = i < 0 ? i + rank_ : i;
    check<shape_error>(j >= 0 && j < rank_, "shape", *this, ": no dimension ", i);
    return dims_[j];
  }
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < rank_; ++i) n *= dims_[i];
    return n;
  }
  const int64_t* begin() const { return dims_.data(); }
  const int64_t* end() const { return dims_.data() + rank_; }

  friend bool operator==(const shape& a, const shape& b) {
    if (a.rank_ != b.rank_) return false;
    for (int i = 0; i < a.rank_; ++i)
      if (a.dims_[i] != b.dims_[i]) return false;
    return true;
  }
  friend std::ostream& operator<<(std::ostream& os, const shape& s) {
    os << '(';
    for (int i = 0; i < s.rank_; ++i) os << (i ? ", " : "") << s.dims_[i];
    return os << ')';
  }
  std::string str() const {
    std::ostringstream os;
    os << *this;
    return os.str();
  }

 private:
  std::array<int64_t, max_rank> dims_{};
  int rank_ = 0;
};

/// Throws shape_error naming `what`, the expected and the actual shape, unless they are equal.
inline void expect_shape(const shape& actual, const shape& expected, const char* what) {
  check<shape_error>(actual == expected, what, ": expected shape ", expected, ", got ", actual);
}

}  // namespace ssl
