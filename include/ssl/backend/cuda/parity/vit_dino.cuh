#pragma once
// Workload W3 of shared/WORKLOADS.md (DINO training step) written once over the ops:: overload sets,
// templated on the backend B:  vit_dino<cpu> a(seed);  vit_dino<cuda> b(seed);  a.step(globals, locals)
//   crops:    globals (2B, 1, 28, 28) = global crops 0 then 1, locals (4B, 1, 12, 12) = local crops 0..3
//   student:  ViT-T/4 on the globals (50 tokens) and on the locals (10 tokens; the 7x7 pos table
//             resized to 3x3 by a fixed bicubic matrix), CLS outputs -> DINO head on all 6B rows
//   teacher:  same architecture, identical initial values, on the globals only, no gradient
//   head:     Linear(192,512) -> GELU -> Linear(512,512) -> GELU -> Linear(512,128) -> L2-normalise ->
//             weight-normed Linear(128,4096, no bias), weight_g = 1 frozen
//   loss:     DINO (tau_s 0.1, tau_t 0.04, centering), ssl::dino on the CPU, ops::dino_loss on the GPU
//   update:   AdamW lr 1.25e-4, wd 0.04 (betas 0.9, 0.999) on the student (weight_g frozen), then
//             center <- 0.9 center + 0.1 mean(teacher outputs), teacher <- 0.996 teacher + 0.004 student
// Student parameter names are those of ssl::dino_method<vit<>, dino_head<>>::collect, same order.
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "../../../losses/dino.hpp"
#include "../../../optim/adamw.hpp"
#include "../../../optim/ema.hpp"
#include "../dino_loss.cuh"
#include "../optim.cuh"
#include "../weight_norm.cuh"
#include "vit_tiny.cuh"

namespace ssl::parity {

inline constexpr float w3_lr = 1.25e-4f, w3_beta1 = 0.9f, w3_beta2 = 0.999f, w3_eps = 1e-8f, w3_weight_decay = 0.04f;
inline constexpr float w3_student_t = 0.1f, w3_teacher_t = 0.04f, w3_center_momentum = 0.9f, w3_ema = 0.996f;

template <class B>
struct dino_head_saved {
  tensor<B> x, h1, a1, h2, a2, n, norms, w;
};

/// DINO head over the ops (names mlp.0.*, mlp.2.*, mlp.4.*, last_layer.weight_g, last_layer.weight_v).
template <class B>
class dino_head_ops {
 public:
  static constexpr int64_t in = 192, hidden = 512, bottleneck = 128, out = 4096;

  dino_head_ops() = default;
  dino_head_ops(param_store<B>& store, const std::string& prefix, host_init& init) {
    auto zero = [](int64_t n) { return host_init::constant(shape{n}, 0.0f); };
    w0_ = &store.add(prefix + "mlp.0.weight", init.trunc_normal(shape{hidden, in}));
    b0_ = &store.add(prefix + "mlp.0.bias", zero(hidden));
    w1_ = &store.add(prefix + "mlp.2.weight", init.trunc_normal(shape{hidden, hidden}));
    b1_ = &store.add(prefix + "mlp.2.bias", zero(hidden));
    w2_ = &store.add(prefix + "mlp.4.weight", init.trunc_normal(shape{bottleneck, hidden}));
    b2_ = &store.add(prefix + "mlp.4.bias", zero(bottleneck));
    g_ = &store.add(prefix + "last_layer.weight_g", host_init::constant(shape{out, 1}, 1.0f));
    g_->frozen = true;  // norm_last_layer
    tensor<cpu> v(shape{out, bottleneck});
    const float bound = 1.0f / std::sqrt(float(bottleneck));
    for (int64_t i = 0; i < v.numel(); ++i) v[i] = init.gen.uniform(-bound, bound);
    v_ = &store.add(prefix + "last_layer.weight_v", v);
  }

  /// x (R, 192) -> (R, 4096).
  tensor<B> forward(const tensor<B>& x, dino_head_saved<B>& s) const {
    s.x = x;
    s.h1 = ops::linear_forward(x, w0_->value, &b0_->value);
    s.a1 = ops::gelu_forward(s.h1);
    s.h2 = ops::linear_forward(s.a1, w1_->value, &b1_->value);
    s.a2 = ops::gelu_forward(s.h2);
    s.n = ops::l2_normalize_rows(ops::linear_forward(s.a2, w2_->value, &b2_->value), s.norms);
    s.w = ops::weight_norm(v_->value, g_->value);
    return ops::linear_forward(s.n, s.w, nullptr);
  }

  /// dy (R, 4096) -> dx (R, 192); accumulates gradients (weight_g's too, as the library does).
  tensor<B> backward(const dino_head_saved<B>& s, const tensor<B>& dy) const {
    tensor<B> dw = zeros<B>(v_->value.shape());
    tensor<B> g = ops::linear_backward(s.n, s.w, dy, dw, nullptr);
    ops::weight_norm_backward(v_->value, g_->value, dw, v_->grad, g_->grad);
    g = ops::l2_normalize_rows_backward(s.n, s.norms, g);
    g = ops::linear_backward(s.a2, w2_->value, g, w2_->grad, &b2_->grad);
    g = ops::linear_backward(s.a1, w1_->value, ops::gelu_backward(s.h2, g), w1_->grad, &b1_->grad);
    return ops::linear_backward(s.x, w0_->value, ops::gelu_backward(s.h1, g), w0_->grad, &b0_->grad);
  }

 private:
  parameter<B>*w0_ = nullptr, *b0_ = nullptr, *w1_ = nullptr, *b1_ = nullptr, *w2_ = nullptr, *b2_ = nullptr,
  *g_ = nullptr, *v_ = nullptr;
};

template <class B>
class vit_dino {
 public:
  static constexpr int64_t globals = 2, locals = 4, views = globals + locals, dim = vit_tiny<B>::dim;
  static constexpr int64_t out = dino_head_ops<B>::out;

  /// Student and teacher drawn on the host from the same `seed` (identical initial values).
  explicit vit_dino(uint64_t seed) {
    host_init si{rng(seed)}, ti{rng(seed)};
    s_vit_ = vit_tiny<B>(student_, "student.backbone.", si);
    s_head_ = dino_head_ops<B>(student_, "student.head.", si);
    t_vit_ = vit_tiny<B>(teacher_, "teacher.backbone.", ti);
    t_head_ = dino_head_ops<B>(teacher_, "teacher.head.", ti);
    center_ = zeros<B>(shape{out});
    if constexpr (std::is_same_v<B, cpu>) {
      optimizer_ = std::make_unique<adamw<cpu>>(student_.list(), adamw_options{w3_lr, w3_beta1, w3_beta2, w3_eps,
                                                                          w3_weight_decay});
      loss_ = dino(out, w3_student_t, w3_teacher_t, w3_center_momentum);
    } else {
      for (int64_t i = 0; i < student_.size(); ++i) {
        exp_avg_.push_back(zeros<B>(student_.at(i).value.shape()));
        exp_avg_sq_.push_back(zeros<B>(student_.at(i).value.shape()));
      }
    }
  }

  param_store<B>& student() { return student_; }
  param_store<B>& teacher() { return teacher_; }
  const tensor<B>& center() const { return center_; }

  /// teacher <- student (values), e.g. after loading student weights.
  void sync_teacher() {
    for (int64_t i = 0; i < student_.size(); ++i) teacher_.at(i).value = student_.at(i).value;
  }

  /// Forward + loss + backward: zeroes the student gradients first, leaves them in student().
  /// g: (2B, 1, 28, 28), l: (4B, 1, 12, 12). Returns the loss (host float / 1-element device tensor).
  auto forward_backward(const tensor<B>& g, const tensor<B>& l) {
    check<shape_error>(g.rank() == 4 && g.dim(0) % globals == 0 && g.dim(0) > 0 && g.dim(2) == 28 && g.dim(3) == 28,
                       "vit_dino: expected global crops (2 B, 1, 28, 28), got ", g.shape());
    const int64_t N = g.dim(0) / globals;
    check<shape_error>(l.rank() == 4 && l.dim(0) == locals * N && l.dim(2) == 12 && l.dim(3) == 12,
                       "vit_dino: expected local crops (", locals * N, ", 1, 12, 12) for ", N, " images, got ",
                       l.shape());
    student_.zero_grad();
    // ---- teacher on the global crops (its saved state is dropped)
    {
      vit_saved<B> ts;
      dino_head_saved<B> hs;
      teacher_out_ = t_head_.forward(cls_rows(t_vit_.forward(g, ts)), hs);
      teacher_out_.reshape(shape{globals, N, out});  // (2, N, K)
    }
    // ---- student: backbone per resolution, head on all 6N CLS features (view order)
    vit_saved<B> gs, ls;
    const tensor<B> cls_g = cls_rows(s_vit_.forward(g, gs)), cls_l = cls_rows(s_vit_.forward(l, ls));
    tensor<B> feats = zeros<B>(shape{views * N, dim});
    ops::add_range(feats, 0, cls_g, 0, cls_g.numel());
    ops::add_range(feats, cls_g.numel(), cls_l, 0, cls_l.numel());
    dino_head_saved<B> hs;
    tensor<B> student_out = s_head_.forward(feats, hs);  // (6N, K)
    // ---- loss
    loss_grad r = loss_and_grad(student_out.reshape(shape{views, N, out}), teacher_out_);
    // ---- backward
    const tensor<B> dfeats = s_head_.backward(hs, r.grad.reshape(shape{views * N, out}));
    tensor<B> dg = zeros<B>(shape{globals * N, 1, dim}), dl = zeros<B>(shape{locals * N, 1, dim});
    ops::add_range(dg, 0, dfeats, 0, dg.numel());
    ops::add_range(dl, 0, dfeats, dg.numel(), dl.numel());
    s_vit_.backward(gs, ops::unslice_tokens(dg, 1 + 49, 0));
    s_vit_.backward(ls, ops::unslice_tokens(dl, 1 + 9, 0));
    return std::move(r.value);
  }

  /// AdamW on the student (frozen weight_g skipped), center update, teacher EMA.
  void update() {
    ++steps_;
    if constexpr (std::is_same_v<B, cpu>) {
      optimizer_->step();
      loss_.load_center(center_);
      loss_.update_center(teacher_out_);
      center_ = loss_.center();
    } else {
      for (int64_t i = 0; i < student_.size(); ++i)
        if (!student_.at(i).frozen)
          ops::adamw_update(student_.at(i).value, student_.at(i).grad, exp_avg_[size_t(i)], exp_avg_sq_[size_t(i)],
                            steps_, w3_lr, w3_beta1, w3_beta2, w3_eps, w3_weight_decay);
      ops::dino_update_center(center_, teacher_out_, w3_center_momentum);
    }
    for (int64_t i = 0; i < student_.size(); ++i) ema_update(teacher_.at(i).value, student_.at(i).value, w3_ema);
  }

  auto step(const tensor<B>& g, const tensor<B>& l) {
    auto loss = forward_backward(g, l);
    update();
    return loss;
  }

 private:
  struct loss_grad {
    std::conditional_t<std::is_same_v<B, cpu>, float, tensor<cuda>> value;
    tensor<B> grad;
  };
  loss_grad loss_and_grad(const tensor<B>& student_out, const tensor<B>& teacher_out) {
    if constexpr (std::is_same_v<B, cpu>) {
      loss_.load_center(center_);
      dino_result r = loss_(student_out, teacher_out);
      return {r.value, std::move(r.grad_student)};
    } else {
      ops::dino_device_result r = ops::dino_loss(student_out, teacher_out, center_, w3_student_t, w3_teacher_t);
      return {std::move(r.value), std::move(r.grad_student)};
    }
  }
  /// tokens (R, T, D) -> the CLS rows (R, D).
  static tensor<B> cls_rows(const tensor<B>& tokens) {
    tensor<B> c = ops::slice_tokens(tokens, 0, 1);
    c.reshape(shape{tokens.dim(0), tokens.dim(2)});
    return c;
  }

  param_store<B> student_, teacher_;
  vit_tiny<B> s_vit_, t_vit_;
  dino_head_ops<B> s_head_, t_head_;
  tensor<B> center_, teacher_out_;
  int64_t steps_ = 0;
  std::vector<tensor<B>> exp_avg_, exp_avg_sq_;  // GPU only
  std::unique_ptr<adamw<cpu>> optimizer_;            // CPU only
  dino loss_;                                    // CPU only
};

}  // namespace ssl::parity
