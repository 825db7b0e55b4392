#pragma once
// DINO (Caron et al. 2021, "Emerging Properties in Self-Supervised Vision Transformers"),
// with DINOv2's KoLeo regulariser (Oquab et al. 2023) as an option.
//
// Student = encoder + dino_head (trained); teacher = an EMA copy of both (never trained).
// views: the first G = global_views (default 2) are global crops of one size, the rest local
// crops (possibly of another size). Per step, with B images:
//   student: the backbone runs once per resolution group (views of one shape concatenated),
//            the head once on all V B backbone features               s (V, B, K)
//   teacher: backbone + head on the G global crops only                t (G, B, K), no gradient
//   L = dino(s, t): cross-entropy over every (teacher g, student v != g) pair  (losses/dino.hpp)
//     + koleo_weight * sum_g koleo(student backbone features of global crop g)   (DINOv2)
// after_step (after the optimizer step), in this order:
//   center c <- m_c c + (1 - m_c) mean(t)          (the teacher outputs of the step just taken)
//   teacher <- m teacher + (1 - m) student,  m = 1 - (1 - m0)(cos(pi i / I) + 1) / 2,  i = step - 1
// Teacher temperature of step i: linear from teacher_temperature_start to teacher_temperature over
// the first teacher_warmup_steps steps, then constant (DINO: 0.04 -> 0.07 over 30 epochs).
// Freezing the last layer: while step < freeze_last_layer_steps, the head's last layer gets zero
// gradients and is marked frozen (the optimizer skips it), as DINO's cancel_gradients_last_layer.
// (Heads without zero_last_layer_grad / set_last_layer_frozen are never frozen.)
//
// Teacher mode: a ViT teacher runs `infer` (no saved state). An encoder with batch norms (e.g.
// convnet_s) runs `forward` in train mode with its saved state dropped at once, so its BN uses the
// statistics of the global-crop batch, as the official code's teacher (in train mode) does; its
// running statistics follow its own batches. teacher_mode::infer / ::train overrides the choice.
//
// Collapse monitoring: last_dino_loss() near collapse_reference() = ln K means uniform outputs
// (eval::dino_loss_collapse).
#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../eval/collapse_monitor.hpp"
#include "../heads/dino_head.hpp"
#include "../losses/dino.hpp"
#include "../losses/koleo.hpp"
#include "../backend/cpu/vit_ops.hpp"  // ops::add_range
#include "../nn/batch_norm.hpp"
#include "detail/method_parts.hpp"
#if defined(__CUDACC__)
#include "../backend/cuda/vit_ops.cuh"
#endif

namespace ssl {

enum class teacher_mode { automatic, infer, train };

struct dino_options {
  int global_views = 2;
  float student_temperature = 0.1f;
  float teacher_temperature_start = 0.04f;  // warm-up start
  float teacher_temperature = 0.07f;        // after the warm-up
  int64_t teacher_warmup_steps = 0;         // 0: teacher_temperature from the start
  float center_momentum = 0.9f;
  float momentum_base = 0.996f;  // EMA momentum at step 0
  bool cosine_momentum = true;   // raise it to 1 along a cosine over the planned steps
  int64_t freeze_last_layer_steps = 0;
  float koleo_weight = 0.0f;  // DINOv2: 0.1
  teacher_mode teacher = teacher_mode::automatic;

  /// WORKLOADS.md W3: teacher temperature 0.04 constant, no freezing, no KoLeo.
  static dino_options w3() { return {.teacher_temperature_start = 0.04f, .teacher_temperature = 0.04f}; }
};

template <class E, class H = dino_head<typename E::backend_type>>
class dino_method {
  static_assert(Encoder<E>, "dino_method<E, H>: E must satisfy ssl::Encoder (a Module with feature_dim())");
  static_assert(Head<H>, "dino_method<E, H>: H must satisfy ssl::Head (a Module with in_dim(), out_dim(), is_head)");
  static_assert(std::same_as<typename E::backend_type, typename H::backend_type>,
                "dino_method<E, H>: encoder and head must use the same backend tag");

 public:
  using backend_type = typename E::backend_type;

  dino_method(E encoder, H head, const dino_options& o = {})
      : encoder_(std::move(encoder)), head_(std::move(head)), opt_(o),
        loss_(head_.out_dim(), o.student_temperature, o.teacher_temperature_start, o.center_momentum) {
    check<shape_error>(encoder_.feature_dim() == head_.in_dim(), "dino: the encoder gives features of size ",
                       encoder_.feature_dim(), " but the head expects in_dim ", head_.in_dim());
    check<value_error>(o.global_views >= 1, "dino: expected at least 1 global view, got ", o.global_views);
    check<value_error>(o.teacher_warmup_steps >= 0 && o.freeze_last_layer_steps >= 0 && o.koleo_weight >= 0.0f,
                       "dino: expected non-negative warm-up steps, freeze steps and KoLeo weight, got ",
                       o.teacher_warmup_steps, ", ", o.freeze_last_layer_steps, ", ", o.koleo_weight);
    check<value_error>(o.teacher_temperature > 0.0f && o.teacher_temperature_start > 0.0f,
                       "dino: teacher temperatures must be > 0, got ", o.teacher_temperature_start, " -> ",
                       o.teacher_temperature);
    methods_detail::expect_momentum(o.momentum_base, "dino");
    teacher_encoder_.emplace(encoder_);
    teacher_head_.emplace(head_);
    center_ = to_backend<backend_type>(loss_.center());
    momentum_ = o.momentum_base;
  }

  /// Teacher temperature used at step `step` (0-based).
  float teacher_temperature_at(int64_t step) const {
    if (step >= opt_.teacher_warmup_steps) return opt_.teacher_temperature;
    const double f = double(step) / double(opt_.teacher_warmup_steps);
    return float(opt_.teacher_temperature_start + (opt_.teacher_temperature - opt_.teacher_temperature_start) * f);
  }

  /// views: G global crops (one shape), then local crops; every view a (B, C, h, w) batch.
  step_stats train_step(const std::vector<tensor<backend_type>>& views) {
    const int64_t V = int64_t(views.size()), G = opt_.global_views;
    check<value_error>(V >= 2 && V >= G, "dino: expected at least 2 views with the ", G,
                       " global crops first, got ", V, " view(s)");
    const int64_t B = views[0].dim(0);
    for (int64_t v = 0; v < V; ++v)
      check<shape_error>(views[size_t(v)].rank() == 4 && views[size_t(v)].dim(0) == B, "dino: view ", v,
                         " should be a (", B, ", C, h, w) batch like view 0, got ", views[size_t(v)].shape());
    for (int64_t g = 1; g < G; ++g)
      check<shape_error>(views[size_t(g)].shape() == views[0].shape(), "dino: global crop ", g, " has shape ",
                         views[size_t(g)].shape(), " but global crop 0 has shape ", views[0].shape());

    // Teacher: backbone + head on the G global crops (G B, C, H, W), no gradient.
    std::vector<const tensor<backend_type>*> globals;
    for (int64_t g = 0; g < G; ++g) globals.push_back(&views[size_t(g)]);
    const tensor<backend_type> xg = G == 1 ? views[0] : concat_batch(globals);
    teacher_out_ = teacher_head_->infer(teacher_features(xg));  // (G B, K)
    const int64_t K = head_.out_dim(), F = encoder_.feature_dim();
    teacher_out_.reshape(shape{G, B, K});

    // Student backbone: once per resolution group (first-appearance order of the view shapes);
    // the group of exactly the global crops reuses their concatenation.
    std::vector<std::vector<int64_t>> groups;
    for (int64_t v = 0; v < V; ++v) {
      auto it = std::find_if(groups.begin(), groups.end(),
                             [&](const auto& gr) { return views[size_t(gr[0])].shape() == views[size_t(v)].shape(); });
      if (it == groups.end())
        groups.push_back({v});
      else
        it->push_back(v);
    }
    std::vector<typename E::saved_type> saved(groups.size());
    tensor<backend_type> feats(shape{V * B, F});  // backbone features in view order
    for (size_t k = 0; k < groups.size(); ++k) {
      std::vector<const tensor<backend_type>*> parts;
      for (int64_t v : groups[k]) parts.push_back(&views[size_t(v)]);
      const bool is_global = int64_t(groups[k].size()) == G && groups[k].front() == 0 && groups[k].back() == G - 1;
      tensor<backend_type> cat;
      const tensor<backend_type>* x = &xg;
      if (!is_global) x = parts.size() == 1 ? parts[0] : &(cat = concat_batch(parts));
      auto o = encoder_.forward(*x);
      saved[k] = std::move(o.saved);
      for (size_t j = 0; j < groups[k].size(); ++j)
        tensor<backend_type>::copy_elements(o.y.data() + int64_t(j) * B * F, feats.data() + groups[k][j] * B * F,
                                            B * F);
    }

    // Head on all V B features, loss against the teacher.
    auto s = head_.forward(feats);
    tensor<backend_type> student = std::move(s.y);
    student.reshape(shape{V, B, K});
    loss_.set_teacher_temperature(teacher_temperature_at(step_));
    auto r = [&] {
      if constexpr (std::same_as<backend_type, cpu>) {
        loss_.load_center(center_);
        return loss_(student, teacher_out_);
      } else {
        return loss_(student, teacher_out_, center_);  // the center stays on the device
      }
    }();
    r.grad_student.reshape(shape{V * B, K});
    tensor<backend_type> dfeats = head_.backward(s.saved, r.grad_student);

    // DINOv2's KoLeo on each global crop's backbone features: dfeats[g] += w dKoLeo/dfeats[g].
    using koleo_value = decltype(koleo{}(feats).value);
    std::vector<koleo_value> koleo_values;
    if (opt_.koleo_weight > 0.0f) {
      check<shape_error>(B >= 2, "dino: KoLeo needs at least 2 images per batch, got ", B);
      for (int64_t g = 0; g < G; ++g) {
        const tensor<backend_type> fg = methods_detail::rows(feats, g * B, (g + 1) * B);
        auto kr = koleo{}(fg);
        ops::add_range(dfeats, g * B * F, kr.grad_x, 0, B * F, opt_.koleo_weight);
        koleo_values.push_back(std::move(kr.value));
      }
    }

    // Backbone backward per group.
    for (size_t k = 0; k < groups.size(); ++k) {
      const int64_t n = int64_t(groups[k].size());
      tensor<backend_type> dg(shape{n * B, F});
      for (int64_t j = 0; j < n; ++j)
        tensor<backend_type>::copy_elements(dfeats.data() + groups[k][size_t(j)] * B * F, dg.data() + j * B * F,
                                            B * F);
      encoder_.backward(std::move(saved[k]), dg);  // the encoder may release its activations as it goes
    }

    // The loss values, read last (on the GPU the whole step is queued before the host waits).
    last_dino_loss_ = host_loss(r.value);
    expect_finite_loss(last_dino_loss_, "dino");
    float total = last_dino_loss_;
    for (const auto& kv : koleo_values) total += opt_.koleo_weight * host_loss(kv);
    if (!koleo_values.empty()) expect_finite_loss(total, "dino (with KoLeo)");

    if constexpr (requires(H& h) { h.zero_last_layer_grad(); h.set_last_layer_frozen(true); }) {
      const bool freeze = step_ < opt_.freeze_last_layer_steps;
      if (freeze) head_.zero_last_layer_grad();
      head_.set_last_layer_frozen(freeze);
    }
    return {total};
  }

  /// After the optimizer step: center update, teacher EMA, step counter.
  void after_step(const step_info& info) {
    if (!teacher_out_.empty()) {
      if constexpr (std::same_as<backend_type, cpu>) {
        loss_.load_center(center_);
        loss_.update_center(teacher_out_);
        center_ = loss_.center();
      } else {
        loss_.update_center(center_, teacher_out_);
      }
      teacher_out_ = tensor<backend_type>();
    }
    momentum_ = opt_.cosine_momentum
                    ? methods_detail::cosine_to_one(opt_.momentum_base, double(std::max<int64_t>(info.step - 1, 0)) /
                                                                             double(std::max<int64_t>(info.total_steps, 1)))
                    : opt_.momentum_base;
    methods_detail::ema_module(*teacher_encoder_, encoder_, momentum_);
    methods_detail::ema_module(*teacher_head_, head_, momentum_);
    step_ = info.step;
  }

  void collect(param_list<backend_type>& out, const std::string& prefix) {
    encoder_.collect(out, join_name(prefix, "student.backbone"));
    head_.collect(out, join_name(prefix, "student.head"));
  }
  /// Student BN statistics, the whole teacher (weights + statistics) and the center.
  void collect_buffers(methods_detail::buffer_list<backend_type>& out, const std::string& prefix) {
    methods_detail::module_buffers(encoder_, out, join_name(prefix, "student.backbone"));
    methods_detail::teacher_buffers(*teacher_encoder_, out, join_name(prefix, "teacher.backbone"));
    methods_detail::teacher_buffers(*teacher_head_, out, join_name(prefix, "teacher.head"));
    out.emplace_back(join_name(prefix, "center"), &center_);
  }

  E& encoder() { return encoder_; }
  const E& encoder() const { return encoder_; }
  H& head() { return head_; }
  /// The EMA teacher (DINO evaluates the teacher's backbone).
  E& teacher_encoder() { return *teacher_encoder_; }
  const E& teacher_encoder() const { return *teacher_encoder_; }
  H& teacher_head() { return *teacher_head_; }
  /// The loss and its temperatures. Its own center() is the CPU method's working copy; the live
  /// center (on the method's backend) is center().
  const dino& loss() const { return loss_; }
  const dino_options& options() const { return opt_; }
  const tensor<backend_type>& center() const { return center_; }
  /// EMA momentum of the latest after_step (momentum_base before the first).
  float momentum() const { return momentum_; }
  int64_t step_count() const { return step_; }
  void set_step_count(int64_t s) { step_ = s; }

  /// The DINO part of the latest train_step's loss (without KoLeo), and ln K, its value for
  /// uniform outputs: a loss stuck at ln K signals collapse.
  float last_dino_loss() const { return last_dino_loss_; }
  double collapse_reference() const { return std::log(double(head_.out_dim())); }
  eval::collapse_report collapse_check(double tolerance = 0.01) const {
    return eval::dino_loss_collapse(last_dino_loss_, head_.out_dim(), tolerance);
  }

 private:
  tensor<backend_type> teacher_features(const tensor<backend_type>& x) {
    constexpr bool has_bn = HasBatchNorms<E>;
    const bool train = opt_.teacher == teacher_mode::train || (opt_.teacher == teacher_mode::automatic && has_bn);
    if (train) return teacher_encoder_->forward(x).y;  // batch statistics; saved state dropped
    return teacher_encoder_->infer(x);
  }

  E encoder_;
  H head_;
  std::optional<E> teacher_encoder_;
  std::optional<H> teacher_head_;
  dino_options opt_;
  dino loss_;
  tensor<backend_type> center_;
  tensor<backend_type> teacher_out_;  // (G, B, K) of the latest step, for the center update
  float momentum_ = 0.996f;
  float last_dino_loss_ = 0.0f;
  int64_t step_ = 0;
};

}  // namespace ssl
