#pragma once
// A folder of image files (PNG, JPEG, BMP), decoded on demand through stb_image.
//
//   labelled:   root/<class>/.../*.png   one sub-folder per class; classes sorted by name,
//                                        label = position in that order (torchvision's ImageFolder)
//   unlabelled: root/*.png               no sub-folders with images: every label is no_label
// Files are sorted by path, so indices are the same on every machine.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../io/image.hpp"
#include "../tensor/tensor.hpp"
#include "dataset.hpp"

namespace ssl::data {

class image_folder {
 public:
  /// Scans `root`. `channels` 0 keeps each file's channels, 1 converts to grey, 3 to RGB, 4 to RGBA.
  /// Throws io_error when root is not a folder or holds no images.
  explicit image_folder(const std::string& root, int channels = 3) : root_(root), channels_(channels) {
    namespace fs = std::filesystem;
    check<value_error>(channels >= 0 && channels <= 4, "image_folder: channels must be 0 (as stored) or 1..4, got ",
                       channels);
    std::error_code ec;
    check<io_error>(fs::is_directory(root, ec), "image_folder: '", root, "' is not a folder");
    std::vector<fs::path> class_dirs, flat;
    for (const auto& e : fs::directory_iterator(root, ec)) {
      if (e.is_directory()) class_dirs.push_back(e.path());
      else if (is_image_file(e.path())) flat.push_back(e.path());
    }
    check<io_error>(!ec, "image_folder: cannot list '", root, "': ", ec.message());
    std::sort(class_dirs.begin(), class_dirs.end());
    for (const auto& dir : class_dirs) {
      std::vector<fs::path> files;
      for (const auto& e : fs::recursive_directory_iterator(dir, fs::directory_options::follow_directory_symlink, ec))
        if (e.is_regular_file() && is_image_file(e.path())) files.push_back(e.path());
      if (files.empty()) continue;  // folders without images are not classes
      std::sort(files.begin(), files.end());
      const int label = int(classes_.size());
      classes_.push_back(dir.filename().string());
      for (auto& f : files) {
        paths_.push_back(f.string());
        labels_.push_back(label);
      }
    }
    if (classes_.empty()) {  // flat and unlabelled
      std::sort(flat.begin(), flat.end());
      for (auto& f : flat) paths_.push_back(f.string());
    }
    check<io_error>(!paths_.empty(), "image_folder: no image files (png, jpg, jpeg, bmp) under '",
                    root, "'");
  }

  int64_t size() const { return int64_t(paths_.size()); }
  /// Decodes file i: (C, H, W) in [0, 1]. Throws io_error / format_error naming the file.
  tensor<cpu> image(int64_t i) const { return io::read_image(path(i), channels_); }
  int label(int64_t i) const {
    check_index(i);
    return labels_.empty() ? no_label : labels_[size_t(i)];
  }
  const std::string& path(int64_t i) const {
    check_index(i);
    return paths_[size_t(i)];
  }
  bool has_labels() const { return !labels_.empty(); }
  /// Class names (sub-folder names) by label; empty when unlabelled.
  const std::vector<std::string>& classes() const { return classes_; }
  const std::string& root() const { return root_; }

  static bool is_image_file(const std::filesystem::path& p) {
    std::string ext = p.extension().string();
    for (auto& ch : ext) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    for (const char* e : {".png", ".jpg", ".jpeg", ".bmp"})
      if (ext == e) return true;
    return false;
  }

 private:
  void check_index(int64_t i) const {
    check<value_error>(i >= 0 && i < size(), "image_folder: index ", i, " out of range [0, ", size(), ")");
  }
  std::string root_;
  int channels_;
  std::vector<std::string> paths_;
  std::vector<int> labels_;
  std::vector<std::string> classes_;
};

static_assert(dataset<image_folder>);

}  // namespace ssl::data
