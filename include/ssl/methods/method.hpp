#pragma once
// The Method concept: one training step of a self-supervised method.
//
//   step_stats s = m.train_step(views);   // forward on every view, loss, backward: gradients
//                                          // ACCUMULATE into the parameters m.collect lists
//   m.after_step(info);                    // after the optimizer step: EMA teachers, queues, centers
//   m.collect(list, prefix);               // trainable parameters (students only)
//   m.encoder();                           // the backbone whose features are evaluated
// views[v] is a (B, C, h_v, w_v) batch of the v-th view of every image.
// Satisfied by ssl::simclr (and every class in ssl/methods/).
#include <cmath>
#include <concepts>
#include <initializer_list>
#include <string>
#include <vector>

#include "../nn/module.hpp"

namespace ssl {

/// What a step reports to the trainer.
struct step_stats {
  float loss = 0;
};

/// Where training is when a step ends: for schedules inside methods (EMA momentum, temperatures).
struct step_info {
  int64_t step = 0;         // steps done, this one included
  int64_t total_steps = 1;  // planned steps (for cosine schedules)
  int64_t epoch = 0;
  double progress() const { return total_steps > 0 ? double(step) / double(total_steps) : 1.0; }
};

template <class M>
concept Method = requires(M m, const std::vector<tensor<typename M::backend_type>>& views,
                          param_list<typename M::backend_type>& pl, const step_info& info) {
  { m.train_step(views) } -> std::same_as<step_stats>;
  m.after_step(info);
  m.collect(pl, std::string{});
  m.encoder();
};

/// Concatenates batches along dimension 0: (B1, ...), (B2, ...) -> (B1 + B2, ...).
/// The trailing dimensions must agree. On the device: one copy per part on the stream.
template <class B>
tensor<B> concat_batch(const std::vector<const tensor<B>*>& parts) {
  check<value_error>(!parts.empty(), "concat_batch: no tensors given");
  shape s = parts[0]->shape();
  int64_t rows = 0;
  for (const auto* p : parts) {
    shape a = p->shape(), b = s;
    check<shape_error>(a.rank() == b.rank() && a.rank() >= 1, "concat_batch: expected rank ", b.rank(), ", got ", a);
    a[0] = b[0] = 0;
    check<shape_error>(a == b, "concat_batch: trailing dimensions differ: ", parts[0]->shape(), " vs ", p->shape());
    rows += p->dim(0);
  }
  s[0] = rows;
  tensor<B> out(s);
  float* dst = out.data();
  for (const auto* p : parts) {
    tensor<B>::copy_elements(p->data(), dst, p->numel());
    dst += p->numel();
  }
  return out;
}
template <class B>
tensor<B> concat_batch(std::initializer_list<const tensor<B>*> parts) {
  return concat_batch(std::vector<const tensor<B>*>(parts));
}

/// A loss value as a host float: itself on the CPU; a device loss (a (1) tensor<cuda>) is read
/// back, one synchronisation per step (the trainer logs it and checks it is finite).
inline float host_loss(float v) { return v; }
template <class T>
  requires requires(const T& t) { to_host_scalar(t); }
float host_loss(const T& v) {
  return to_host_scalar(v);
}

/// Throws numeric_error when a loss is not finite (diverged training).
inline void expect_finite_loss(float loss, const char* method) {
  check<numeric_error>(std::isfinite(loss), method, ": the loss is not finite (", loss,
                       "); lower the learning rate or check the inputs");
}

}  // namespace ssl
