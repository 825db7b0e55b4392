// The pretext and metric-learning methods through the library's own classes on the GPU: rotation
// prediction, jigsaw, colorization and triplet, each built from convnet_s<cuda> + projection_mlp<cuda>
// with sgd<cuda>, take the same two training steps as their <cpu> instantiation from the same seeds:
// loss, gradients, parameters after the step and BN statistics. The per-step transforms (rotated
// copies, jigsaw tiles: a gather on the device; colorization: prepared on the host) and the device
// losses (cross-entropy, triplet mining) are exercised through train_step.
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <ssl/encoders/convnet_s.hpp>
#include <ssl/heads/projection_mlp.hpp>
#include <ssl/methods/colorization.hpp>
#include <ssl/methods/jigsaw.hpp>
#include <ssl/methods/rotation.hpp>
#include <ssl/methods/triplet.hpp>
#include <ssl/optim/sgd.hpp>

#include "method_parity.cuh"

using namespace ssl;
using namespace ssl_cuda_test;  // random, rel_diff and the helpers of method_parity.cuh

namespace {
template <class B>
using rotation_t = rotation_method<convnet_s<B>, projection_mlp<B>>;
template <class B>
using jigsaw_t = jigsaw_method<convnet_s<B>, projection_mlp<B>>;
template <class B>
using colorization_t = colorization_method<convnet_s<B>, projection_mlp<B>>;
template <class B>
using triplet_t = triplet_method<convnet_s<B>, projection_mlp<B>>;

static_assert(Method<rotation_t<cuda>> && Method<jigsaw_t<cuda>> && Method<colorization_t<cuda>> &&
              Method<triplet_t<cuda>>);

// A one-layer projection_mlp is a linear classifier (the heads of the pretext examples).
template <class B>
projection_mlp<B> linear_head(int64_t in, int64_t out, uint64_t seed) {
  return projection_mlp<B>({.in_dim = in, .hidden_dim = 256, .out_dim = out, .layers = 1}, rng(seed).fork(1));
}

template <class B>
rotation_t<B> make_rotation(uint64_t seed) {
  return rotation_t<B>(convnet_s<B>(1, rng(seed)), linear_head<B>(256, 4, seed));
}
constexpr int jigsaw_permutations = 16;
template <class B>
jigsaw_t<B> make_jigsaw(uint64_t seed) {  // 28x28 images: 7x7 tiles in 9x9 cells
  return jigsaw_t<B>(convnet_s<B>(1, rng(seed)), linear_head<B>(9 * 256, jigsaw_permutations, seed),
                     {.permutations = jigsaw_permutations, .tile = 7, .seed = 4});
}
template <class B>
colorization_t<B> make_colorization(uint64_t seed, const pretext::ab_quantizer& bins) {
  const colorization_options o{.grid = 2};
  return colorization_t<B>(convnet_s<B>(1, rng(seed)), linear_head<B>(256, o.grid * o.grid * bins.bins(), seed), o,
                           bins);
}
template <class B>
triplet_t<B> make_triplet(uint64_t seed, triplet_mining loss) {
  return triplet_t<B>(convnet_s<B>(1, rng(seed)),
                      projection_mlp<B>({.in_dim = 256, .hidden_dim = 256, .out_dim = 64}, rng(seed).fork(1)),
                      std::move(loss));
}

}  // namespace

TEST_CASE("cuda: the rotated copies and jigsaw tiles gathered on the device are the host transforms' exactly") {
  SSL_REQUIRE_CUDA_DEVICE();
  const tensor<cpu> x = random(shape{5, 3, 12, 12}, 500, 0.0f, 1.0f);
  const tensor<cuda> dx = to_device(x);
  const auto rot = pretext::rotation_batch(methods_detail::element_index_images(x.shape()));
  CHECK(rel_diff(methods_detail::gather_per_image(dx, rot.images), pretext::rotation_batch(x).images) == 0.0);
  const pretext::permutation_set perms(8, 1);
  const auto jig = pretext::jigsaw_batch(methods_detail::element_index_images(x.shape()), perms, rng(2), 3);
  const auto ref = pretext::jigsaw_batch(x, perms, rng(2), 3);
  CHECK(jig.labels == ref.labels);
  CHECK(rel_diff(methods_detail::gather_per_image(dx, jig.tiles), ref.tiles) == 0.0);
}

TEST_CASE("cuda: rotation_method<convnet_s<cuda>, projection_mlp<cuda>> steps like <cpu>") {
  SSL_REQUIRE_CUDA_DEVICE();
  auto host = make_rotation<cpu>(21);
  auto dev = make_rotation<cuda>(21);
  check_two_sgd_steps(host, dev, one_view(8, 1, 600), {});
  CHECK(dev.encoder().bn(0).num_batches_tracked() == 2);
}

TEST_CASE("cuda: jigsaw_method<convnet_s<cuda>, projection_mlp<cuda>> steps like <cpu> (same puzzles)") {
  SSL_REQUIRE_CUDA_DEVICE();
  auto host = make_jigsaw<cpu>(22);
  auto dev = make_jigsaw<cuda>(22);
  check_two_sgd_steps(host, dev, one_view(8, 1, 610), {});
  // train_on with given (host) puzzles uploads them
  const auto jb = pretext::jigsaw_batch(random(shape{4, 1, 28, 28}, 620, 0.0f, 1.0f), host.permutations(), rng(7), 7);
  const float loss = host.train_on(jb).loss, dev_loss = dev.train_on(jb).loss;  // parameters agree within 1e-4
  CHECK(std::abs(dev_loss - loss) <= 1e-3f * std::abs(loss));
}

TEST_CASE("cuda: colorization_method<convnet_s<cuda>, projection_mlp<cuda>> steps like <cpu>") {
  SSL_REQUIRE_CUDA_DEVICE();
  const auto bins = pretext::ab_quantizer::from_gamut(8, 20.0f);
  auto host = make_colorization<cpu>(23, bins);
  auto dev = make_colorization<cuda>(23, bins);
  check_two_sgd_steps(host, dev, one_view(8, 3, 630), {});
}

TEST_CASE("cuda: triplet_method<convnet_s<cuda>, projection_mlp<cuda>> steps like <cpu> (pseudo-labels, semi-hard)") {
  SSL_REQUIRE_CUDA_DEVICE();
  const triplet_mining loss(triplet_strategy::semi_hard, 0.3f, triplet_distance::cosine);
  auto host = make_triplet<cpu>(24, loss);
  auto dev = make_triplet<cuda>(24, loss);
  check_two_sgd_steps(host, dev, two_views(8, 640), {"head.0.bias"});
}

TEST_CASE("cuda: triplet_method steps like <cpu> with class labels (batch-all, squared distance)") {
  SSL_REQUIRE_CUDA_DEVICE();
  const triplet_mining loss(triplet_strategy::batch_all, 1.0f, triplet_distance::squared_euclidean);
  auto host = make_triplet<cpu>(25, loss);
  auto dev = make_triplet<cuda>(25, loss);
  const std::vector<int64_t> labels{0, 1, 2, 0, 1, 2, 0, 1};
  auto labelled = [&](auto& m, const auto& views) { return m.train_step(views, labels).loss; };
  check_two_sgd_steps(host, dev, one_view(8, 1, 650), labelled, labelled, {"head.0.bias"});
}
