#pragma once
// Small pieces shared by the methods of ssl/methods/: row slices of a batch, EMA of a whole
// module, cosine momentum schedules, listing a teacher's weights as checkpoint buffers, and the
// encoder + head + loss base of the pretext and metric-learning methods.
#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>
#include <utility>
#include <vector>

#include "../../optim/ema.hpp"
#include "../method.hpp"
#include "../../core/profile.hpp"

namespace ssl::methods_detail {

using buffer_list = std::vector<std::pair<std::string, tensor<cpu>*>>;

/// Rows [begin, end) of x (N, ...) as a new (end - begin, ...) tensor.
inline tensor<cpu> rows(const tensor<cpu>& x, int64_t begin, int64_t end) {
  check<shape_error>(x.rank() >= 1 && begin >= 0 && begin <= end && end <= x.dim(0), "rows: cannot take rows [", begin,
                     ", ", end, ") of a tensor of shape ", x.shape());
  shape s = x.shape();
  s[0] = end - begin;
  tensor<cpu> out(s);
  const int64_t row = end > begin ? out.numel() / (end - begin) : 0;
  std::copy_n(x.data() + begin * row, out.numel(), out.data());
  return out;
}

/// [a; b] (2B, D) -> [b; a]: pairs each row of one view with the same image's other view.
inline tensor<cpu> swap_halves(const tensor<cpu>& x) {
  check<shape_error>(x.rank() >= 1 && x.dim(0) % 2 == 0, "swap_halves: expected an even number of rows, got shape ",
                     x.shape());
  const int64_t half = x.numel() / 2;
  tensor<cpu> out(x.shape());
  std::copy_n(x.data() + half, half, out.data());
  std::copy_n(x.data(), half, out.data() + half);
  return out;
}

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
  param_list<cpu> t, s;
  teacher.collect(t, "");
  student.collect(s, "");
  ema_update(t, s, m);
}

/// Copies the buffers (BN running statistics) of `from` into `to` (same module type).
template <class M>
void copy_buffers(M& to, M& from) {
  if constexpr (requires(buffer_list& l) { to.collect_buffers(l, std::string{}); }) {
    buffer_list a, b;
    to.collect_buffers(a, "");
    from.collect_buffers(b, "");
    for (size_t i = 0; i < a.size() && i < b.size(); ++i) *a[i].second = *b[i].second;
  }
}

/// Lists a module's buffers, when it has any.
template <class M>
void module_buffers(M& m, buffer_list& out, const std::string& prefix) {
  if constexpr (requires(buffer_list& l) { m.collect_buffers(l, std::string{}); }) m.collect_buffers(out, prefix);
}

/// Lists a teacher's parameter values and buffers as checkpoint buffers (the teacher is not
/// trained by the optimizer, but a resumed run needs it).
template <class M>
void teacher_buffers(M& m, buffer_list& out, const std::string& prefix) {
  param_list<cpu> ps;
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
inline void expect_same_views(const std::vector<tensor<cpu>>& views, size_t count, const char* who) {
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
  void collect_buffers(buffer_list& out, const std::string& prefix) {
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
