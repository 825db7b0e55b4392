#pragma once
// Typed errors. Every public entry point checks its input and throws one of these
// with a message naming what was expected and what was found.
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace ssl {

/// Base of every error the library throws.
struct error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
/// Tensor shapes that do not fit together (wrong channels, wrong feature size ...).
struct shape_error : error {
  using error::error;
};
/// An argument outside its valid range (negative temperature, k > n, ...).
struct value_error : error {
  using error::error;
};
/// A file that cannot be opened, read or written.
struct io_error : error {
  using error::error;
};
/// A file whose content is malformed: wrong magic, truncated, inconsistent header.
struct format_error : io_error {
  using io_error::io_error;
};
/// A non-finite loss or gradient, or a collapsed representation.
struct numeric_error : error {
  using error::error;
};
/// An operation asked of a backend that cannot do it (no CUDA device, ...).
struct backend_error : error {
  using error::error;
};

namespace detail {
template <class... Args>
std::string concat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}
}  // namespace detail

/// Throw `E` with the concatenation of `args` unless `cond` holds.
template <class E = value_error, class... Args>
inline void check(bool cond, Args&&... args) {
  if (!cond) [[unlikely]]
    throw E(detail::concat(std::forward<Args>(args)...));
}

}  // namespace ssl
