#pragma once
// CIFAR-10 / CIFAR-100 binary batches (Krizhevsky 2009, "binary version").
//
//   CIFAR-10 record:  <label: 1 byte, 0..9> <3072 bytes: 1024 R, 1024 G, 1024 B, rows of 32>
//   CIFAR-100 record: <coarse: 1 byte, 0..19> <fine: 1 byte, 0..99> <3072 bytes as above>
// Files: cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin, cifar-100-binary/{train,test}.bin.
// Images -> (N, 3, 32, 32) floats v / 255 (the bytes are already planar CHW).
#include <filesystem>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/parallel.hpp"
#include "../tensor/tensor.hpp"
#include "bytes.hpp"
#include "dataset.hpp"
#include "mnist.hpp"

namespace ssl::data {

enum class cifar_format { cifar10, cifar100_fine, cifar100_coarse };

namespace detail {
inline constexpr int64_t cifar_pixels = 3 * 32 * 32;
inline int cifar_label_bytes(cifar_format f) { return f == cifar_format::cifar10 ? 1 : 2; }
inline int cifar_classes(cifar_format f) {
  return f == cifar_format::cifar10 ? 10 : f == cifar_format::cifar100_fine ? 100 : 20;
}
}  // namespace detail

/// Number of records in one batch file's bytes; throws format_error unless the size is a
/// positive multiple of the record size. `name` is used in error messages.
inline int64_t cifar_records(std::span<const uint8_t> bytes, cifar_format f, const std::string& name = "<memory>") {
  const int64_t record = detail::cifar_label_bytes(f) + detail::cifar_pixels;
  check<format_error>(!bytes.empty() && int64_t(bytes.size()) % record == 0, "CIFAR '", name, "': ", bytes.size(),
                      " bytes is not a positive multiple of the ", record, "-byte ",
                      f == cifar_format::cifar10 ? "CIFAR-10" : "CIFAR-100", " record (truncated or wrong format)");
  return int64_t(bytes.size()) / record;
}

/// Decodes the records of one batch file into `images` (records x 3072 floats, CHW) and
/// `labels` (records ints). Throws format_error on a bad size or an out-of-range label.
inline void decode_cifar(std::span<const uint8_t> bytes, cifar_format f, float* images, int* labels,
                         const std::string& name = "<memory>") {
  const int64_t n = cifar_records(bytes, f, name);
  const int lb = detail::cifar_label_bytes(f);
  const int64_t record = lb + detail::cifar_pixels;
  const int classes = detail::cifar_classes(f);
  const int label_at = f == cifar_format::cifar100_fine ? 1 : 0;
  for (int64_t r = 0; r < n; ++r) {
    const uint8_t* rec = bytes.data() + r * record;
    if (lb == 2)
      check<format_error>(rec[0] < 20 && rec[1] < 100, "CIFAR '", name, "': record ", r, " has coarse label ", int(rec[0]),
                          " and fine label ", int(rec[1]), ", expected < 20 and < 100 (is this a CIFAR-10 file?)");
    const int label = rec[label_at];
    check<format_error>(label < classes, "CIFAR '", name, "': record ", r, " has label ", label, ", expected 0..",
                        classes - 1, " (is this a CIFAR-100 file?)");
    labels[r] = label;
  }
  parallel_for(
      0, n,
      [&](int64_t r) {
        const uint8_t* px = bytes.data() + r * record + lb;
        float* out = images + r * detail::cifar_pixels;
        for (int64_t k = 0; k < detail::cifar_pixels; ++k) out[k] = float(px[k]) / 255.0f;
      },
      64);
}

/// One batch file's bytes as a dataset (N, 3, 32, 32).
inline in_memory_dataset parse_cifar(std::span<const uint8_t> bytes, cifar_format f, const std::string& name = "<memory>") {
  const int64_t n = cifar_records(bytes, f, name);
  tensor<cpu> images(shape{n, 3, 32, 32});
  std::vector<int> labels(static_cast<size_t>(n));
  decode_cifar(bytes, f, images.data(), labels.data(), name);
  return in_memory_dataset(std::move(images), std::move(labels), detail::cifar_classes(f));
}

/// Reads CIFAR binary batch files into one dataset, in the order given.
inline in_memory_dataset load_cifar_batches(const std::vector<std::string>& paths, cifar_format f) {
  check<value_error>(!paths.empty(), "load_cifar_batches: expected at least one batch file, got none");
  std::vector<byte_vector> files;
  int64_t n = 0;
  for (const auto& p : paths) {
    files.push_back(read_bytes(p));
    n += cifar_records(files.back(), f, p);
  }
  tensor<cpu> images(shape{n, 3, 32, 32});
  std::vector<int> labels(static_cast<size_t>(n));
  int64_t at = 0;
  for (size_t k = 0; k < files.size(); ++k) {
    decode_cifar(files[k], f, images.data() + at * detail::cifar_pixels, labels.data() + at, paths[k]);
    at += cifar_records(files[k], f, paths[k]);
    byte_vector().swap(files[k]);
  }
  return in_memory_dataset(std::move(images), std::move(labels), detail::cifar_classes(f));
}

/// CIFAR-10 from `dir` = the extracted cifar-10-batches-bin folder (50000 train / 10000 test).
inline in_memory_dataset load_cifar10(const std::string& dir, split s) {
  std::vector<std::string> files;
  if (s == split::train)
    for (int b = 1; b <= 5; ++b) files.push_back(dir + "/data_batch_" + std::to_string(b) + ".bin");
  else
    files.push_back(dir + "/test_batch.bin");
  for (const auto& f : files)
    check<io_error>(std::filesystem::is_regular_file(f), "CIFAR-10 ", to_string(s), " split: missing '", f,
                    "' (expected the extracted cifar-10-batches-bin folder)");
  return load_cifar_batches(files, cifar_format::cifar10);
}

/// CIFAR-100 from `dir` = the extracted cifar-100-binary folder (50000 train / 10000 test),
/// labelled with the 100 fine classes, or the 20 superclasses when `coarse`.
inline in_memory_dataset load_cifar100(const std::string& dir, split s, bool coarse = false) {
  const std::string file = dir + (s == split::train ? "/train.bin" : "/test.bin");
  check<io_error>(std::filesystem::is_regular_file(file), "CIFAR-100 ", to_string(s), " split: missing '", file,
                  "' (expected the extracted cifar-100-binary folder)");
  return load_cifar_batches({file}, coarse ? cifar_format::cifar100_coarse : cifar_format::cifar100_fine);
}

}  // namespace ssl::data
