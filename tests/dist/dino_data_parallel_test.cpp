// DINO under data_parallel: with a ViT (LayerNorm, no BatchNorm) and the center averaged over ranks
// after each step (the default buffer policy: centering on the global batch, as DINO's all-reduce),
// W ranks with batch B train exactly as one process with batch B W, teacher and center included.
#include <ssl/encoders/vit.hpp>
#include <ssl/methods/dino.hpp>

#include "dp_support.hpp"

using namespace ssl;
using namespace ssl::dist;
using namespace dp_test;

namespace {
auto make_dino(uint64_t seed) {
  return dino_method<vit<>>(vit<>({.image_size = 8, .patch = 4, .in_channels = 1, .dim = 8, .depth = 1, .heads = 2}, rng(seed)),
                            dino_head<>({.in_dim = 8, .hidden_dim = 12, .bottleneck_dim = 6, .out_dim = 10}, rng(seed + 1)),
                            {.momentum_base = 0.9f});
}
}  // namespace

TEST_CASE("dino under data_parallel: the single-process run, one global center") {
  const auto d = tiny_data(8);
  auto single = make_dino(2);
  // The tiny head's weight-normed last layer has gradients of ~400: a small lr keeps the run out of
  // the regime where rounding differences (1e-7 relative per step) grow into visible ones.
  const float lr = 0.005f;
  const auto reference = train_single(single, d, 12, lr);
  std::vector<std::pair<std::string, tensor<cpu>*>> bs;
  single.collect_buffers(bs, "");
  const auto reference_buffers = flat_buffers(bs);
  const auto ranks = train_ranks(2, 6, d, [](thread_communicator& comm) { return make_dino(comm.rank() == 0 ? 2 : 3); }, lr);
  CHECK(ranks[1].params == ranks[0].params);
  CHECK(ranks[1].buffers == ranks[0].buffers);  // teacher and center
  CHECK(max_abs_difference(ranks[0].params, reference) < 2e-5f);
  CHECK(max_abs_difference(ranks[0].buffers, reference_buffers) < 2e-5f);
  // the center did move (the comparison includes a live center, not the zeros it starts from)
  float center_size = 0;
  for (auto& [name, t] : bs)
    if (name == "center")
      for (int64_t i = 0; i < t->numel(); ++i) center_size = std::max(center_size, std::fabs(t->data()[i]));
  CHECK(center_size > 1e-3f);
}
