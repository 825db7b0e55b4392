#pragma once
// MNIST and Fashion-MNIST from their four IDX files (gzip-compressed or not):
//   train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-..., t10k-labels-...
// Fashion-MNIST's default folder is $SSL_FASHION_MNIST_DIR, else the one Debian's package
// dataset-fashion-mnist installs: /usr/share/datasets/fashion-mnist.
#include <array>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "../core/error.hpp"
#include "idx.hpp"

namespace ssl::data {

enum class split { train, test };

inline const char* to_string(split s) { return s == split::train ? "train" : "test"; }

/// Class names of Fashion-MNIST, by label.
inline constexpr std::array<std::string_view, 10> fashion_mnist_classes = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};

/// $SSL_FASHION_MNIST_DIR when set, else /usr/share/datasets/fashion-mnist.
inline std::string fashion_mnist_dir() {
  const char* env = std::getenv("SSL_FASHION_MNIST_DIR");
  return env && *env ? std::string(env) : std::string("/usr/share/datasets/fashion-mnist");
}

namespace detail {
// dir/stem.gz if present, else dir/stem if present, else "" (missing).
inline std::string find_idx_file(const std::string& dir, const std::string& stem) {
  namespace fs = std::filesystem;
  for (const std::string& candidate : {dir + "/" + stem + ".gz", dir + "/" + stem})
    if (std::error_code ec; fs::is_regular_file(candidate, ec)) return candidate;
  return {};
}
}  // namespace detail

/// The MNIST-layout split in `dir` (train: 60000 images, test: 10000 for MNIST and Fashion-MNIST).
/// `what` names the data set in error messages, `hint` tells how to get it.
inline in_memory_dataset load_mnist(const std::string& dir, split s, const std::string& what = "MNIST",
                                    const std::string& hint = "") {
  const std::string prefix = s == split::train ? "train" : "t10k";
  const std::string images = detail::find_idx_file(dir, prefix + "-images-idx3-ubyte");
  const std::string labels = detail::find_idx_file(dir, prefix + "-labels-idx1-ubyte");
  check<io_error>(!images.empty() && !labels.empty(), what, " ", to_string(s), " split not found: expected ", dir, "/",
                  prefix, "-images-idx3-ubyte[.gz] and ", dir, "/", prefix, "-labels-idx1-ubyte[.gz]", hint);
  return load_idx(images, labels);
}

/// Fashion-MNIST (Xiao et al. 2017): 28x28 grey, 10 classes, 60000 train / 10000 test.
inline in_memory_dataset load_fashion_mnist(split s, const std::string& dir = fashion_mnist_dir()) {
  return load_mnist(dir, s, "Fashion-MNIST",
                    "; install the Debian package dataset-fashion-mnist (apt install dataset-fashion-mnist) or set "
                    "SSL_FASHION_MNIST_DIR to a folder holding these files");
}

}  // namespace ssl::data
