#pragma once
// SimCLR (Chen et al., 2020): two augmented views of each image, one encoder, one
// projection head, NT-Xent between the views.
//
//   x = [v1; v2]          (2B, C, H, W)  — one batch, so BN statistics cover both views
//   h = encoder(x)        (2B, F)
//   z = projector(h)      (2B, D)
//   L = nt_xent(z)        row i's positive is row i +- B
// The parts are template parameters: any Encoder, any Head, any Loss taking (2B, D)
// embeddings and returning `value` and `grad_z`. The backend is the parts' backend tag:
// simclr<convnet_s<cuda>, projection_mlp<cuda>> runs the same step on the GPU (under nvcc).
#include <string>
#include <utility>
#include <vector>

#include "../losses/loss.hpp"
#include "../losses/nt_xent.hpp"
#include "method.hpp"

namespace ssl {

template <class E, class H, class L = nt_xent>
class simclr {
  static_assert(Encoder<E>, "simclr<E, H, L>: E must satisfy ssl::Encoder (a Module with feature_dim())");
  static_assert(Head<H>, "simclr<E, H, L>: H must satisfy ssl::Head (a Module with in_dim(), out_dim(), is_head)");
  static_assert(std::same_as<typename E::backend_type, typename H::backend_type>,
                "simclr<E, H, L>: encoder and head must use the same backend tag");
  static_assert(Loss<L, tensor<cpu>>, "simclr<E, H, L>: L must satisfy ssl::Loss on (2B, D) embeddings");

 public:
  using backend_type = typename E::backend_type;

  simclr(E encoder, H projector, L loss = L{})
      : encoder_(std::move(encoder)), projector_(std::move(projector)), loss_(std::move(loss)) {
    check<shape_error>(encoder_.feature_dim() == projector_.in_dim(), "simclr: the encoder gives features of size ",
                       encoder_.feature_dim(), " but the projection head expects in_dim ", projector_.in_dim());
  }

  /// views: exactly two (B, C, H, W) batches of the same shape.
  step_stats train_step(const std::vector<tensor<backend_type>>& views) {
    check<value_error>(views.size() == 2, "simclr: expected 2 views per image, got ", views.size());
    expect_shape(views[1], views[0].shape(), "simclr second view");
    const tensor<backend_type> x = concat_batch({&views[0], &views[1]});
    auto h = encoder_.forward(x);
    auto z = projector_.forward(h.y);
    auto r = loss_(z.y);
    // The encoder may release its saved activations stage by stage (lower peak memory) and skip
    // the images' gradient, which nothing uses.
    const tensor<backend_type> dh = projector_.backward(z.saved, r.grad_z);
    if constexpr (requires { encoder_.backward_params(std::move(h.saved), dh); })
      encoder_.backward_params(std::move(h.saved), dh);
    else
      encoder_.backward(std::move(h.saved), dh);
    // Read last: on the GPU the whole step is queued before the host waits for the loss.
    const float loss = host_loss(r.value);
    expect_finite_loss(loss, "simclr");
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

  E& encoder() { return encoder_; }
  const E& encoder() const { return encoder_; }
  H& projector() { return projector_; }
  const L& loss() const { return loss_; }

 private:
  E encoder_;
  H projector_;
  L loss_;
};

}  // namespace ssl
