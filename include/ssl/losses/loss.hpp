#pragma once
// The Loss concept: a small callable unit returning its value and the gradient
// with respect to each input that takes one.
//
//   auto r = loss(inputs...);   // r.value: float, r.grad_<role>: tensor shaped like that input
//
// Requirements (prose, checked in part by the concept below):
//   * Hyper-parameters are members set (and validated) by the constructor; bad values throw
//     ssl::value_error, inputs of the wrong shape throw ssl::shape_error.
//   * Calling the loss is a pure function of its inputs and its state; stateful parts (DINO's
//     center, MoCo's queue) change only through explicit methods called after the step
//     (`update_center`, `enqueue`) and are exposed for checkpoints.
//   * `value` is the scalar loss; each `grad_<role>` is d value / d <role>, exactly the
//     gradient a backward pass feeds into the module that produced that input. Inputs
//     under stop-gradient (BYOL's target, MoCo's keys, DINO's teacher) have no grad member.
//   * Numerically stable for any batch size: log-sum-exp throughout, clamped norms.
//
// Satisfied by: triplet, triplet_mining, info_nce, nt_xent, moco, moco_v3, byol, simsiam,
// dino, masked_reconstruction, cross_entropy, soft_cross_entropy, koleo, barlow_twins, vicreg, swav,
// nnclr, smooth_l1.
#include <concepts>
#include <type_traits>

namespace ssl {

/// A loss result: a struct with a `float value` (plus the gradients, named by role).
template <class R>
concept loss_result = requires(const R& r) {
  { r.value } -> std::convertible_to<float>;
};

/// L is a loss over the inputs `Inputs...`: callable on them, returning a loss_result.
template <class L, class... Inputs>
concept Loss = std::invocable<const L&, const Inputs&...> &&
               loss_result<std::invoke_result_t<const L&, const Inputs&...>>;

}  // namespace ssl
