#pragma once
// patch_embed<B>: ViT patch embedding, Conv2d(C, D, kernel p, stride p) with bias, computed as
// patchify + linear (one GEMM):  x (N, C, H, W) -> tokens (N, (H/p)(W/p), D), raster order.
//   proj.weight: (D, C p p) = the conv weight (D, C, p, p) flattened; proj.bias: (D).
// Init (timm / MAE): xavier_uniform on the (D, C p p) view, bias 0.
// Any H, W divisible by p work (28x28 -> 7x7 tokens, 12x12 crops -> 3x3).
//
// Also here, shared by MAE and MaskFeat: token_mask and random_token_mask (per-sample random
// masking by argsort of uniform noise, as MAE's random_masking). Masks are host index lists on
// every backend; the device token ops take them and upload them.
#include <algorithm>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "../backend/cpu/patch_embed.hpp"
#include "linear.hpp"
#if defined(__CUDACC__)
#include "../backend/cuda/tokens.cuh"  // the tensor<cuda> overloads of the same ops
#endif

namespace ssl {

struct patch_embed_options {
  int64_t in_channels = 1;
  int64_t patch = 4;
  int64_t dim = 192;
};

template <class B = cpu>
class patch_embed {
 public:
  using backend_type = B;
  struct saved_type {
    typename linear<B>::saved_type proj;
    int64_t height = 0, width = 0;
  };

  patch_embed() = default;
  explicit patch_embed(const patch_embed_options& o, rng gen = rng(0))
      : opt_(check_options(o)), proj_(o.in_channels * o.patch * o.patch, o.dim, true, gen) {
    proj_.reset_xavier_uniform(gen.fork(1));
  }

  const patch_embed_options& options() const { return opt_; }
  int64_t patch_dim() const { return opt_.in_channels * opt_.patch * opt_.patch; }
  linear<B>& proj() { return proj_; }

  /// Token grid (rows, cols) for an image of size h x w.
  std::pair<int64_t, int64_t> grid(int64_t h, int64_t w) const { return {h / opt_.patch, w / opt_.patch}; }

  output<saved_type, B> forward(const tensor<B>& x) {
    check_input(x);
    auto o = proj_.forward(ops::patchify(x, opt_.patch));
    return {std::move(o.y), saved_type{std::move(o.saved), x.dim(2), x.dim(3)}};
  }
  tensor<B> backward(const saved_type& s, const tensor<B>& dy) {
    tensor<B> dp = proj_.backward(s.proj, dy);
    return ops::unpatchify(dp, opt_.in_channels, opt_.patch, s.height / opt_.patch, s.width / opt_.patch);
  }
  tensor<B> infer(const tensor<B>& x) const {
    check_input(x);
    return proj_.infer(ops::patchify(x, opt_.patch));
  }
  void collect(param_list<B>& out, const std::string& prefix) { proj_.collect(out, join_name(prefix, "proj")); }

 private:
  static const patch_embed_options& check_options(const patch_embed_options& o) {
    check<value_error>(o.in_channels > 0 && o.patch > 0 && o.dim > 0,
                       "patch_embed: expected positive in_channels, patch and dim, got ", o.in_channels, ", ", o.patch,
                       ", ", o.dim);
    return o;
  }
  void check_input(const tensor<B>& x) const {
    check<shape_error>(x.rank() == 4 && x.dim(1) == opt_.in_channels && x.dim(2) % opt_.patch == 0 &&
                           x.dim(3) % opt_.patch == 0 && x.dim(2) > 0 && x.dim(3) > 0,
                       "patch_embed: expected images (N, ", opt_.in_channels, ", H, W) with H, W multiples of ",
                       opt_.patch, ", got ", x.shape());
  }

  patch_embed_options opt_;
  linear<B> proj_;
};

/// Which of L patch tokens each sample keeps: keep[n K + k] is the k-th kept patch index
/// (in shuffle order), restore[n L + l] the position of patch l in the shuffle, mask (N, L) 1 = hidden.
struct token_mask {
  int64_t batch = 0, tokens = 0, kept = 0;
  std::vector<int32_t> keep;
  std::vector<int32_t> restore;
  tensor<cpu> mask;
};

/// Which patch tokens a student sees replaced by a learned mask token (BEiT / iBOT / DINOv2):
/// hidden[n L + l] != 0 hides patch l (raster order) of sample n. Unlike token_mask nothing is
/// dropped: the sequence keeps all 1 + L tokens. pretext/block_mask.hpp draws DINOv2's masks.
struct patch_mask {
  int64_t batch = 0, tokens = 0;
  std::vector<uint8_t> hidden;  // (batch, tokens)
  /// Number of hidden patches of sample n, and in all.
  int64_t hidden_in(int64_t n) const {
    int64_t c = 0;
    for (int64_t l = 0; l < tokens; ++l) c += hidden[size_t(n * tokens + l)] != 0;
    return c;
  }
  int64_t hidden_count() const {
    int64_t c = 0;
    for (uint8_t h : hidden) c += h != 0;
    return c;
  }
};

namespace detail {
/// order = argsort(noise), noise_i ~ U(0, 1) drawn from g: a uniform random permutation, drawn the way
/// MAE's random_masking draws it (stable sort: ties keep index order). noise and order have the same size.
inline void noise_argsort(rng& g, std::vector<float>& noise, std::vector<int32_t>& order) {
  for (auto& v : noise) v = g.uniform();
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return noise[size_t(a)] < noise[size_t(b)]; });
}
}  // namespace detail

/// MAE's random_masking: per sample, uniform noise -> argsort; the first K = int(L (1 - ratio))
/// patches are kept. ratio in [0, 1); K >= 1. Sample n draws from gen.fork(n): thread-count free.
/// `first_sample`: the batch's offset in a larger batch drawn with the same gen (a data-parallel
/// replica's slice of the global batch: sample n draws from gen.fork(first_sample + n)).
inline token_mask random_token_mask(int64_t batch, int64_t tokens, float ratio, const rng& gen, int64_t first_sample = 0) {
  check<value_error>(ratio >= 0.0f && ratio < 1.0f, "random_token_mask: expected a mask ratio in [0, 1), got ", ratio);
  check<value_error>(batch >= 1 && tokens >= 1, "random_token_mask: expected batch, tokens >= 1, got ", batch, ", ",
                     tokens);
  token_mask m;
  m.batch = batch;
  m.tokens = tokens;
  m.kept = std::max<int64_t>(1, int64_t(double(tokens) * (1.0 - double(ratio))));
  m.keep.resize(size_t(batch * m.kept));
  m.restore.resize(size_t(batch * tokens));
  m.mask = tensor<cpu>(shape{batch, tokens}, 1.0f);
  std::vector<float> noise(static_cast<size_t>(tokens));
  std::vector<int32_t> order(static_cast<size_t>(tokens));
  for (int64_t n = 0; n < batch; ++n) {
    rng g = gen.fork(uint64_t(first_sample + n));
    detail::noise_argsort(g, noise, order);
    for (int64_t l = 0; l < tokens; ++l) m.restore[size_t(n * tokens + order[size_t(l)])] = int32_t(l);
    for (int64_t k = 0; k < m.kept; ++k) {
      m.keep[size_t(n * m.kept + k)] = order[size_t(k)];
      m.mask[n * tokens + order[size_t(k)]] = 0.0f;
    }
  }
  return m;
}

}  // namespace ssl
