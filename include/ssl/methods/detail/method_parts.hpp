#pragma once
// Small pieces shared by the methods of ssl/methods/: row slices of a batch, EMA of a whole
// module, cosine momentum schedules, listing a teacher's weights as checkpoint buffers, and the
// encoder + head + loss base of the pretext and metric-learning methods.
// Every helper is generic over the backend B of its tensors / modules (copies through
// tensor<B>::copy_elements, one op per tensor on the device); on the CPU they do what they did.
#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <numbers>
#include <string>
#include <utility>
#include <vector>

#include "../../optim/ema.hpp"
#include "../method.hpp"
#include "../../core/profile.hpp"
#include "../../tensor/counter_buffer.hpp"
#include "replica_place.hpp"
#if defined(__CUDACC__)
#include "../../backend/cuda/elementwise.cuh"
#include "../../backend/cuda/tokens.cuh"
#endif

namespace ssl::methods_detail {

/// Named buffers of a module (BN statistics, teachers, queues) as collect_buffers lists them.
template <class B = cpu>
using buffer_list = std::vector<std::pair<std::string, tensor<B>*>>;

/// Rows [begin, end) of x (N, ...) as a new (end - begin, ...) tensor.
template <class B>
tensor<B> rows(const tensor<B>& x, int64_t begin, int64_t end) {
  check<shape_error>(x.rank() >= 1 && begin >= 0 && begin <= end && end <= x.dim(0), "rows: cannot take rows [", begin,
                     ", ", end, ") of a tensor of shape ", x.shape());
  shape s = x.shape();
  s[0] = end - begin;
  tensor<B> out(s);
  const int64_t row = end > begin ? out.numel() / (end - begin) : 0;
  tensor<B>::copy_elements(x.data() + begin * row, out.data(), out.numel());
  return out;
}

/// [a; b] (2B, D) -> [b; a]: pairs each row of one view with the same image's other view.
template <class B>
tensor<B> swap_halves(const tensor<B>& x) {
  check<shape_error>(x.rank() >= 1 && x.dim(0) % 2 == 0, "swap_halves: expected an even number of rows, got shape ",
                     x.shape());
  const int64_t half = x.numel() / 2;
  tensor<B> out(x.shape());
  tensor<B>::copy_elements(x.data() + half, out.data(), half);
  tensor<B>::copy_elements(x.data(), out.data() + half, half);
  return out;
}

/// y[j] = x[idx[j]] for the rows of x (N, ...): (idx.size(), ...). On the device one gather
/// kernel (ops::gather_tokens on x viewed as (1, N, row)); the indices must lie in [0, N).
template <class B>
tensor<B> gather_rows(const tensor<B>& x, const std::vector<int64_t>& idx) {
  check<shape_error>(x.rank() >= 1, "gather_rows: expected a batch (N, ...), got shape ", x.shape());
  const int64_t n = x.dim(0), row = n > 0 ? x.numel() / n : 0, k = int64_t(idx.size());
  shape s = x.shape();
  s[0] = k;
  if constexpr (std::same_as<B, cpu>) {
    tensor<cpu> y(s);
    for (int64_t j = 0; j < k; ++j) {
      const int64_t i = idx[size_t(j)];
      check<value_error>(i >= 0 && i < n, "gather_rows: index ", i, " outside [0, ", n, ")");
      std::copy_n(x.data() + i * row, row, y.data() + j * row);
    }
    return y;
  } else {
#if defined(__CUDACC__)
    const std::vector<int32_t> i32(idx.begin(), idx.end());  // range-checked by the op
    tensor<B> y = ops::gather_tokens(x.reshaped(shape{1, n, row}), i32, k);
    y.reshape(s);
    return y;
#else
    static_assert(std::same_as<B, cpu>, "gather_rows: a device backend needs nvcc");
#endif
  }
}

/// Adjoint of gather_rows: dx (n, ...) with dx[idx[j]] += dy[j], zero elsewhere (dy (K, ...)).
template <class B>
tensor<B> scatter_rows(const tensor<B>& dy, const std::vector<int64_t>& idx, int64_t n) {
  check<shape_error>(dy.rank() >= 1 && dy.dim(0) == int64_t(idx.size()), "scatter_rows: expected ", idx.size(),
                     " rows, got shape ", dy.shape());
  const int64_t k = dy.dim(0), row = k > 0 ? dy.numel() / k : 0;
  shape s = dy.shape();
  s[0] = n;
  if constexpr (std::same_as<B, cpu>) {
    tensor<cpu> dx(s, 0.0f);
    for (int64_t j = 0; j < k; ++j) {
      const int64_t i = idx[size_t(j)];
      check<value_error>(i >= 0 && i < n, "scatter_rows: index ", i, " outside [0, ", n, ")");
      float* dst = dx.data() + i * row;
      const float* src = dy.data() + j * row;
      for (int64_t c = 0; c < row; ++c) dst[c] += src[c];
    }
    return dx;
  } else {
#if defined(__CUDACC__)
    const std::vector<int32_t> i32(idx.begin(), idx.end());  // range-checked by the op
    tensor<B> dx = ops::scatter_tokens(dy.reshaped(shape{1, k, row}), i32, n);
    dx.reshape(s);
    return dx;
#else
    static_assert(std::same_as<B, cpu>, "scatter_rows: a device backend needs nvcc");
#endif
  }
}

/// A batch of shape s (N, ...) whose every element holds its flat index within its own image:
/// image n is 0, 1, ..., E - 1 (E = numel / N), as floats (exact: E must be at most 2^24).
/// A host transform that only moves elements (pretext::rotation_batch, jigsaw_batch), run on
/// this batch, writes its own gather map: gather_per_image then applies it to any batch.
inline tensor<cpu> element_index_images(const shape& s) {
  check<shape_error>(s.rank() >= 1 && s[0] > 0, "element_index_images: expected a non-empty batch (N, ...), got ", s);
  const int64_t n = s[0], e = s.numel() / n;
  check<shape_error>(e <= (int64_t(1) << 24), "element_index_images: ", e,
                     " elements per image cannot all be held exactly as float indices (at most 2^24)");
  tensor<cpu> t(s);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < e; ++j) t.data()[i * e + j] = float(j);
  return t;
}

/// The transform whose gather map is `map` applied to x (N, ...): map is that transform's output
/// for element_index_images(x.shape()) (any shape with N blocks of K = map.numel() / N elements,
/// block n made from image n alone), and
///   y[n K + k] = x[n E + map[n K + k]]   (E = x.numel() / N),  y shaped like map.
/// On the device: the map is uploaded and one gather kernel runs (ops::gather_tokens on x viewed
/// as (N, E, 1)); the indices must lie in [0, E).
template <class B>
tensor<B> gather_per_image(const tensor<B>& x, const tensor<cpu>& map) {
  check<shape_error>(x.rank() >= 1 && x.dim(0) > 0 && map.numel() % x.dim(0) == 0,
                     "gather_per_image: expected a map with one block per image of x ", x.shape(), ", got ",
                     map.shape());
  const int64_t n = x.dim(0), e = x.numel() / n, k = map.numel() / n;
  std::vector<int32_t> idx(size_t(map.numel()));
  for (int64_t i = 0; i < map.numel(); ++i) idx[size_t(i)] = int32_t(map.data()[i]);
  if constexpr (std::same_as<B, cpu>) {
    tensor<cpu> y(map.shape());
    for (int64_t i = 0; i < map.numel(); ++i) {
      const int32_t j = idx[size_t(i)];
      check<value_error>(j >= 0 && j < e, "gather_per_image: index ", j, " outside [0, ", e, ")");
      y.data()[i] = x.data()[(i / k) * e + j];
    }
    return y;
  } else {
#if defined(__CUDACC__)
    tensor<B> y = ops::gather_tokens(x.reshaped(shape{n, e, 1}), idx, k);  // range-checked by the op
    y.reshape(map.shape());
    return y;
#else
    static_assert(std::same_as<B, cpu>, "gather_per_image: a device backend needs nvcc");
#endif
  }
}

/// t *= s in place (the device: one kernel, y = s t + 0).
template <class B>
void scale_in_place(tensor<B>& t, float s) {
  if constexpr (std::same_as<B, cpu>) {
    t.vec() *= s;
  } else {
#if defined(__CUDACC__)
    tensor<B> out(t.shape(), 0.0f);
    ops::axpby(s, t, 0.0f, out);
    t = std::move(out);
#else
    static_assert(std::same_as<B, cpu>, "scale_in_place: a device backend needs nvcc");
#endif
  }
}

using ssl::counter_buffer;  // tensor/counter_buffer.hpp

/// Cosine schedule from `base` (progress 0) to 1 (progress 1), as BYOL's tau and MoCo v3's m:
///   m(p) = 1 - (1 - base) (cos(pi p) + 1) / 2
inline float cosine_to_one(float base, double progress) {
  const double p = std::clamp(progress, 0.0, 1.0);
  return float(1.0 - (1.0 - double(base)) * (std::cos(std::numbers::pi * p) + 1.0) / 2.0);
}

inline void expect_momentum(float m, const char* who) {
  check<value_error>(m >= 0.0f && m <= 1.0f, who, ": momentum must be in [0, 1], got ", m);
}

/// teacher = m teacher + (1 - m) student over every parameter of two modules of the same type.
template <class M>
void ema_module(M& teacher, M& student, float m) {
  SSL_PROFILE_SCOPE("teacher ema");
  param_list<typename M::backend_type> t, s;
  teacher.collect(t, "");
  student.collect(s, "");
  ema_update(t, s, m);
}

/// Copies the buffers (BN running statistics) of `from` into `to` (same module type).
template <class M>
void copy_buffers(M& to, M& from) {
  using list = buffer_list<typename M::backend_type>;
  if constexpr (requires(list& l) { to.collect_buffers(l, std::string{}); }) {
    list a, b;
    to.collect_buffers(a, "");
    from.collect_buffers(b, "");
    for (size_t i = 0; i < a.size() && i < b.size(); ++i) *a[i].second = *b[i].second;
  }
}

/// Lists a module's buffers, when it has any.
template <class M>
void module_buffers(M& m, buffer_list<typename M::backend_type>& out, const std::string& prefix) {
  if constexpr (requires { m.collect_buffers(out, std::string{}); }) m.collect_buffers(out, prefix);
}

/// Lists a teacher's parameter values and buffers as checkpoint buffers (the teacher is not
/// trained by the optimizer, but a resumed run needs it).
template <class M>
void teacher_buffers(M& m, buffer_list<typename M::backend_type>& out, const std::string& prefix) {
  param_list<typename M::backend_type> ps;
  m.collect(ps, prefix);
  for (auto& r : ps) out.emplace_back(r.name, &r.p->value);
  module_buffers(m, out, prefix);
}

/// Labels of the rows of a (V B)-row batch made of V views of B images: row v B + i -> i.
inline std::vector<int64_t> pseudo_labels(int64_t views, int64_t batch) {
  std::vector<int64_t> y(size_t(views * batch));
  for (int64_t r = 0; r < views * batch; ++r) y[size_t(r)] = r % batch;
  return y;
}

/// Every view must be a batch of the same shape as the first.
template <class B>
void expect_same_views(const std::vector<tensor<B>>& views, size_t count, const char* who) {
  check<value_error>(views.size() == count, who, ": expected ", count, " view(s) per image, got ", views.size());
  for (size_t v = 1; v < views.size(); ++v)
    check<shape_error>(views[v].shape() == views[0].shape(), who, ": view ", v, " has shape ", views[v].shape(),
                       " but view 0 has shape ", views[0].shape());
}

/// The parts common to the methods made of one encoder, one head and one loss (rotation, jigsaw,
/// colorization, triplet): the three members, their listing for the optimizer ("encoder.*",
/// "head.*") and for checkpoints (buffers), accessors, and an empty after_step.
template <class E, class H, class L>
class encoder_head_loss {
 public:
  using backend_type = typename E::backend_type;

  void after_step(const step_info&) {}

  void collect(param_list<backend_type>& out, const std::string& prefix) {
    encoder_.collect(out, join_name(prefix, "encoder"));
    head_.collect(out, join_name(prefix, "head"));
  }
  void collect_buffers(buffer_list<backend_type>& out, const std::string& prefix) {
    module_buffers(encoder_, out, join_name(prefix, "encoder"));
    module_buffers(head_, out, join_name(prefix, "head"));
  }

  E& encoder() { return encoder_; }
  const E& encoder() const { return encoder_; }
  H& head() { return head_; }
  const L& loss() const { return loss_; }

 protected:
  encoder_head_loss(E encoder, H head, L loss)
      : encoder_(std::move(encoder)), head_(std::move(head)), loss_(std::move(loss)) {}

  E encoder_;
  H head_;
  L loss_;
};

}  // namespace ssl::methods_detail
