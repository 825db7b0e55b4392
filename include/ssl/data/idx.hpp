#pragma once
// IDX files (LeCun's MNIST format; also Fashion-MNIST, KMNIST, EMNIST), plain or gzip-compressed.
//
//   magic: 00 00 <type> <ndims>   type 08 = unsigned byte (the only one image sets use)
//   ndims big-endian uint32 sizes, then prod(sizes) elements, row-major.
// Images: ndims 3, (N, H, W) -> tensor (N, 1, H, W) with v / 255. Labels: ndims 1, (N).
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/parallel.hpp"
#include "../tensor/tensor.hpp"
#include "dataset.hpp"
#include "gzip.hpp"

namespace ssl::data {

/// A parsed IDX file of unsigned bytes: sizes and the raw elements.
struct idx_array {
  std::vector<int64_t> dims;
  byte_vector values;  // prod(dims) bytes, row-major
};

namespace detail {
// Validates IDX bytes (already inflated) and returns the header length; fills dims.
inline size_t parse_idx_header(std::span<const uint8_t> bytes, const std::string& name, std::vector<int64_t>& dims) {
  check<format_error>(bytes.size() >= 4, "IDX '", name, "': truncated: ", bytes.size(), " bytes, the header needs at least 4");
  check<format_error>(bytes[0] == 0 && bytes[1] == 0, "IDX '", name, "': wrong magic: expected 00 00 <type> <ndims>, found ",
                      int(bytes[0]), " ", int(bytes[1]), " ", int(bytes[2]), " ", int(bytes[3]));
  const int type = bytes[2], ndims = bytes[3];
  check<format_error>(type == 0x08, "IDX '", name, "': element type 0x", std::hex, type, std::dec,
                      " not supported, expected 0x08 (unsigned byte)");
  check<format_error>(ndims >= 1 && ndims <= 4, "IDX '", name, "': ", ndims, " dimensions, expected 1 to 4");
  const size_t header = 4 + 4 * size_t(ndims);
  check<format_error>(bytes.size() >= header, "IDX '", name, "': truncated header: ", bytes.size(), " bytes, expected ",
                      header, " for ", ndims, " dimensions");
  dims.clear();
  uint64_t count = 1;
  for (int d = 0; d < ndims; ++d) {
    const uint8_t* p = bytes.data() + 4 + 4 * d;
    const uint64_t size = uint64_t(p[0]) << 24 | uint64_t(p[1]) << 16 | uint64_t(p[2]) << 8 | p[3];
    dims.push_back(int64_t(size));
    count *= size;
    check<format_error>(count <= (uint64_t(1) << 40), "IDX '", name, "': header sizes give more than 2^40 elements");
  }
  const uint64_t have = bytes.size() - header;
  check<format_error>(have == count, "IDX '", name, "': header announces ", count, " elements but the file holds ", have,
                      have < count ? " (truncated)" : " (trailing data)");
  return header;
}
}  // namespace detail

/// Parses IDX bytes (already inflated). `name` is used in error messages.
/// Throws format_error on wrong magic, unsupported element type, or a size that
/// does not match the header.
inline idx_array parse_idx(std::span<const uint8_t> bytes, const std::string& name = "<memory>") {
  idx_array out;
  const size_t header = detail::parse_idx_header(bytes, name, out.dims);
  out.values.assign(bytes.begin() + std::ptrdiff_t(header), bytes.end());
  return out;
}

/// Same, taking ownership of the bytes (the elements are moved, not copied).
inline idx_array parse_idx(byte_vector&& bytes, const std::string& name = "<memory>") {
  idx_array out;
  const size_t header = detail::parse_idx_header(bytes, name, out.dims);
  bytes.erase(bytes.begin(), bytes.begin() + std::ptrdiff_t(header));
  out.values = std::move(bytes);
  return out;
}

/// Reads an IDX file (gzip-compressed or not).
inline idx_array read_idx(const std::string& path) { return parse_idx(read_maybe_gzip(path), path); }

/// IDX image file -> (N, 1, H, W) floats in [0, 1].
inline tensor<cpu> read_idx_images(const std::string& path) {
  const idx_array a = read_idx(path);
  check<format_error>(a.dims.size() == 3, "IDX '", path, "': expected an image file with 3 dimensions (N, H, W), found ",
                      a.dims.size(), " (is this a label file?)");
  const int64_t N = a.dims[0], H = a.dims[1], W = a.dims[2];
  tensor<cpu> out(shape{N, 1, H, W});
  const int64_t per = H * W;
  const uint8_t* src = a.values.data();
  float* dst = out.data();
  parallel_for(
      0, N,
      [&](int64_t n) {
        for (int64_t k = n * per; k < (n + 1) * per; ++k) dst[k] = float(src[k]) / 255.0f;
      },
      256);
  return out;
}

/// IDX label file -> N ints.
inline std::vector<int> read_idx_labels(const std::string& path) {
  const idx_array a = read_idx(path);
  check<format_error>(a.dims.size() == 1, "IDX '", path, "': expected a label file with 1 dimension (N), found ",
                      a.dims.size(), " (is this an image file?)");
  return std::vector<int>(a.values.begin(), a.values.end());
}

/// Images plus (optionally, when labels_path is not empty) labels from two IDX files.
inline in_memory_dataset load_idx(const std::string& images_path, const std::string& labels_path = {}) {
  tensor<cpu> images = read_idx_images(images_path);
  std::vector<int> labels;
  int classes = 0;
  if (!labels_path.empty()) {
    labels = read_idx_labels(labels_path);
    check<format_error>(int64_t(labels.size()) == images.dim(0), "IDX: '", labels_path, "' holds ", labels.size(),
                        " labels but '", images_path, "' holds ", images.dim(0), " images");
    for (int l : labels) classes = std::max(classes, l + 1);
  }
  return in_memory_dataset(std::move(images), std::move(labels), classes);
}

}  // namespace ssl::data
