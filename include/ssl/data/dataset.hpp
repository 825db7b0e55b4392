#pragma once
// The Dataset role, and the in-memory dataset that the IDX and CIFAR readers return.
#include <concepts>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../tensor/tensor.hpp"

namespace ssl::data {

/// Label of an unlabelled sample. Self-supervised training never reads labels.
inline constexpr int no_label = -1;

/// Dataset: an indexable collection of images, optionally labelled.
///   d.size()     -> number of samples (int64_t)
///   d.image(i)   -> tensor<cpu> (C, H, W), floats in [0, 1], for 0 <= i < size()
///   d.label(i)   -> int class index, or no_label (-1) when the dataset is unlabelled
/// image() and label() are const and must be safe to call from several threads at once
/// (the loader's workers do).
/// Satisfied by in_memory_dataset (IDX: MNIST, Fashion-MNIST; CIFAR-10/100) and image_folder.
template <class D>
concept dataset = requires(const D& d, int64_t i) {
  { d.size() } -> std::convertible_to<int64_t>;
  { d.image(i) } -> std::same_as<tensor<cpu>>;
  { d.label(i) } -> std::convertible_to<int>;
};

/// A dataset whose images all have one size: channels(), height(), width().
/// Satisfied by in_memory_dataset (image_folder is not: its files may differ in size).
template <class D>
concept fixed_size_dataset = dataset<D> && requires(const D& d) {
  { d.channels() } -> std::convertible_to<int64_t>;
  { d.height() } -> std::convertible_to<int64_t>;
  { d.width() } -> std::convertible_to<int64_t>;
};

/// A dataset held whole in memory: images() (N, C, H, W) and labels() (N ints, or empty).
/// Satisfied by in_memory_dataset.
template <class D>
concept in_memory = fixed_size_dataset<D> && requires(const D& d) {
  { d.images() } -> std::convertible_to<const tensor<cpu>&>;
  { d.labels() } -> std::convertible_to<const std::vector<int>&>;
};

/// Images (N, C, H, W) in [0, 1] plus optional labels, all in memory.
class in_memory_dataset {
 public:
  in_memory_dataset() = default;
  /// images: (N, C, H, W); labels: N ints, or empty for an unlabelled set.
  explicit in_memory_dataset(tensor<cpu> images, std::vector<int> labels = {}, int num_classes = 0)
      : images_(std::move(images)), labels_(std::move(labels)), num_classes_(num_classes) {
    check<shape_error>(images_.rank() == 4, "in_memory_dataset: expected images of shape (N, C, H, W), got ",
                       images_.shape());
    check<shape_error>(labels_.empty() || int64_t(labels_.size()) == images_.dim(0), "in_memory_dataset: expected ",
                       images_.dim(0), " labels (one per image) or none, got ", labels_.size());
  }

  int64_t size() const { return images_.rank() == 4 ? images_.dim(0) : 0; }
  int64_t channels() const { return images_.dim(1); }
  int64_t height() const { return images_.dim(2); }
  int64_t width() const { return images_.dim(3); }
  bool has_labels() const { return !labels_.empty(); }
  /// Number of classes when known (0 otherwise).
  int num_classes() const { return num_classes_; }

  /// Image i as (C, H, W) (a copy).
  tensor<cpu> image(int64_t i) const {
    check_index(i);
    const int64_t n = channels() * height() * width();
    tensor<cpu> out(shape{channels(), height(), width()});
    std::memcpy(out.data(), images_.data() + i * n, size_t(n) * sizeof(float));
    return out;
  }
  int label(int64_t i) const {
    check_index(i);
    return labels_.empty() ? no_label : labels_[size_t(i)];
  }
  /// The whole set: (N, C, H, W).
  const tensor<cpu>& images() const { return images_; }
  /// One label per image, or empty when unlabelled.
  const std::vector<int>& labels() const { return labels_; }

 private:
  void check_index(int64_t i) const {
    check<value_error>(i >= 0 && i < size(), "in_memory_dataset: index ", i, " out of range [0, ", size(), ")");
  }
  tensor<cpu> images_;
  std::vector<int> labels_;
  int num_classes_ = 0;
};

static_assert(in_memory<in_memory_dataset>);

}  // namespace ssl::data
