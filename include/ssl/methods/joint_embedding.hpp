#pragma once
// Joint-embedding methods without negatives, predictors or teachers: Barlow Twins (Zbontar et al.
// 2021) and VICReg (Bardes, Ponce & LeCun 2022). Both keep the embeddings of two views of an image
// close while a batch-level term keeps them from collapsing.
//
//   z1 = projector(encoder(v1))   (B, D)   one forward per view: BatchNorm statistics per view,
//   z2 = projector(encoder(v2))   (B, D)   as both papers' code
//   L  = loss(z1, z2)             barlow_twins: sum_i (1 - c_ii)^2 + lambda sum_{i != j} c_ij^2,
//                                   c the cross-correlation of the batch-standardised embeddings;
//                                 vicreg: 25 invariance + 25 variance hinge + 1 covariance
// backward: dz1, dz2 through the projector and encoder of their own forward (gradients add up).
//
// joint_embedding<E, H, L>: any Encoder, any Head, any loss callable as loss(z1, z2) that returns
// `value` and the two gradients (grad_z1 / grad_z2 or grad_x / grad_y). Aliases:
//   barlow_twins_method<E, H> = joint_embedding<E, H, barlow_twins>   (lambda 0.0051)
//   vicreg_method<E, H>       = joint_embedding<E, H, vicreg>         (25, 25, 1, eps 1e-4)
// The backend is the parts' backend tag: joint_embedding<convnet_s<cuda>, projection_mlp<cuda>,
// barlow_twins> runs the step on the GPU (under nvcc); the loss value is read back last.
//
// Data-parallel (dist::data_parallel gives set_replica and set_batch_gather): the loss is taken over
// the global batch, as VICReg's code gathers the embeddings of all GPUs (and Barlow Twins' all-reduce
// of the cross-correlation with SyncBN in the projector amounts to the same): every rank gathers
// (W B, D) embeddings of both views, computes the global loss, and back-propagates W dL/dz over its
// own rows, so the gradient data_parallel averages is the single process's
// (tests/dist/joint_embedding_data_parallel_test.cpp).
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "../losses/barlow_twins.hpp"
#include "../losses/loss.hpp"
#include "../losses/vicreg.hpp"
#include "detail/global_batch_rows.hpp"
#include "method.hpp"

namespace ssl {

namespace methods_detail {
/// The two embedding gradients of a two-input loss result, whatever the loss names them.
template <class R>
auto& first_grad(R& r) {
  if constexpr (requires { r.grad_z1; }) return r.grad_z1;
  else return r.grad_x;
}
template <class R>
auto& second_grad(R& r) {
  if constexpr (requires { r.grad_z2; }) return r.grad_z2;
  else return r.grad_y;
}
}  // namespace methods_detail

template <class E, class H, class L>
class joint_embedding {
  static_assert(Encoder<E>, "joint_embedding<E, H, L>: E must satisfy ssl::Encoder (a Module with feature_dim())");
  static_assert(Head<H>,
                "joint_embedding<E, H, L>: H must satisfy ssl::Head (a Module with in_dim(), out_dim(), is_head)");
  static_assert(std::same_as<typename E::backend_type, typename H::backend_type>,
                "joint_embedding<E, H, L>: encoder and head must use the same backend tag");
  static_assert(Loss<L, tensor<cpu>, tensor<cpu>>,
                "joint_embedding<E, H, L>: L must satisfy ssl::Loss on two (B, D) embeddings, returning value and "
                "the gradient of each");

 public:
  using backend_type = typename E::backend_type;

  joint_embedding(E encoder, H projector, L loss = L{})
      : encoder_(std::move(encoder)), projector_(std::move(projector)), loss_(std::move(loss)) {
    check<shape_error>(encoder_.feature_dim() == projector_.in_dim(), name(), ": the encoder gives features of size ",
                       encoder_.feature_dim(), " but the projector expects in_dim ", projector_.in_dim());
  }

  /// views: exactly two (B, C, H, W) batches of the same shape, B >= 2.
  step_stats train_step(const std::vector<tensor<backend_type>>& views) {
    check<value_error>(views.size() == 2, name(), ": expected 2 views per image, got ", views.size());
    expect_shape(views[1], views[0].shape(), "joint_embedding second view");
    check<shape_error>(views[0].dim(0) >= 2, name(), ": the loss needs a batch of at least 2 images, got ",
                       views[0].shape());
    auto h1 = encoder_.forward(views[0]);
    auto z1 = projector_.forward(h1.y);
    auto h2 = encoder_.forward(views[1]);
    auto z2 = projector_.forward(h2.y);
    auto r = [&] {
      if constexpr (std::same_as<backend_type, cpu>)
        if (loss_across_ranks()) return global_loss(z1.y, z2.y);
      return loss_(z1.y, z2.y);
    }();
    backward_view(std::move(h2.saved), z2.saved, methods_detail::second_grad(r));  // releases as it goes
    backward_view(std::move(h1.saved), z1.saved, methods_detail::first_grad(r));
    const float loss = host_loss(r.value);  // read last: on a device the step is queued by now
    expect_finite_loss(loss, name());
    return {loss};
  }

  void after_step(const step_info&) {}

  void collect(param_list<backend_type>& out, const std::string& prefix) {
    encoder_.collect(out, join_name(prefix, "encoder"));
    projector_.collect(out, join_name(prefix, "projector"));
  }
  void collect_buffers(std::vector<std::pair<std::string, tensor<backend_type>*>>& out, const std::string& prefix) {
    if constexpr (requires { encoder_.collect_buffers(out, prefix); })
      encoder_.collect_buffers(out, join_name(prefix, "encoder"));
    if constexpr (requires { projector_.collect_buffers(out, prefix); })
      projector_.collect_buffers(out, join_name(prefix, "projector"));
  }

  /// Data-parallel hooks (dist::data_parallel calls both at construction): this replica's place in
  /// the global batch, and `gather(t)`: every rank's rows of t (n, ...) stacked in rank order.
  void set_replica(int rank, int world_size) { global_.place.set(rank, world_size); }
  void set_batch_gather(std::function<tensor<cpu>(const tensor<cpu>&)> gather)
    requires std::same_as<backend_type, cpu>
  {
    global_.gather = std::move(gather);
  }
  /// Whether the loss is taken over every rank's embeddings (a gather is set and W > 1).
  bool loss_across_ranks() const { return global_.active(); }

  E& encoder() { return encoder_; }
  const E& encoder() const { return encoder_; }
  H& projector() { return projector_; }
  H& head() { return projector_; }
  const L& loss() const { return loss_; }

  /// "barlow_twins", "vicreg" or "joint_embedding" (another loss), for messages.
  static constexpr const char* name() {
    if constexpr (std::same_as<L, barlow_twins>) return "barlow_twins";
    else if constexpr (std::same_as<L, vicreg>) return "vicreg";
    else return "joint_embedding";
  }

 private:
  template <class EncSaved, class HeadSaved>
  void backward_view(EncSaved&& enc_saved, HeadSaved& head_saved, const tensor<backend_type>& dz) {
    const tensor<backend_type> dh = projector_.backward(head_saved, dz);
    if constexpr (requires { encoder_.backward_params(std::move(enc_saved), dh); })
      encoder_.backward_params(std::move(enc_saved), dh);  // skips the images' gradient
    else
      encoder_.backward(std::move(enc_saved), dh);
  }

  // The loss over every rank's embeddings: z1, z2 (n, D) here, (W n, D) gathered in rank order;
  // value L of the global batch (the same on every rank), gradients W dL/dz over this rank's rows.
  auto global_loss(const tensor<cpu>& z1, const tensor<cpu>& z2) {
    const int64_t n = z1.dim(0);
    auto r = loss_(global_.all_rows(z1, name()), global_.all_rows(z2, name()));
    for (tensor<cpu>* g : {&methods_detail::first_grad(r), &methods_detail::second_grad(r)}) *g = global_.own_share(*g, n);
    return r;
  }

  E encoder_;
  H projector_;
  L loss_;
  methods_detail::global_batch global_;  // data-parallel: this replica's place, the gather (host only)
};

/// Barlow Twins: redundancy reduction between the two views' embeddings (losses/barlow_twins.hpp).
template <class E, class H>
using barlow_twins_method = joint_embedding<E, H, barlow_twins>;

/// VICReg: variance, invariance and covariance terms (losses/vicreg.hpp).
template <class E, class H>
using vicreg_method = joint_embedding<E, H, vicreg>;

}  // namespace ssl
