// The token-sequence ops of the op-level ViT / MAE steps (backend/cuda/vit_ops.cuh) and the device
// masked reconstruction loss against their CPU references (backend/cpu/vit_ops.hpp, ssl::masked_reconstruction).
#include <numeric>
#include <ssl/backend/cuda/masked_reconstruction.cuh>
#include <ssl/backend/cuda/vit_ops.cuh>
#include <ssl/nn/patch_embed.hpp>

#include "cuda_test.cuh"

using namespace ssl;
using ssl_cuda_test::random;
using ssl_cuda_test::rel_diff;

TEST_CASE("cuda: ViT token ops (add_rows, sum_batch, add_range, slice/unslice, unshuffle) match the CPU") {
  SSL_REQUIRE_CUDA_DEVICE();
  const int64_t N = 5, L = 9, D = 40;
  const tensor<cpu> x = random(shape{N, 1 + L, D}, 1), rows = random(shape{1 + L, D}, 2);
  CHECK(rel_diff(ops::add_rows(to_device(x), to_device(rows)), ops::add_rows(x, rows)) < 1e-6);
  CHECK(rel_diff(ops::residual_add(to_device(x), to_device(x)), ops::residual_add(x, x)) < 1e-6);
  tensor<cpu> acc = random(shape{1 + L, D}, 3);
  tensor<cuda> dacc = to_device(acc);
  ops::sum_batch(x, acc);
  ops::sum_batch(to_device(x), dacc);
  CHECK(rel_diff(dacc, acc) < 1e-5);
  ops::add_range(acc, 7, x, 11, 50, -0.5f);
  ops::add_range(dacc, 7, to_device(x), 11, 50, -0.5f);
  CHECK(rel_diff(dacc, acc) < 1e-5);
  CHECK(rel_diff(ops::slice_tokens(to_device(x), 1, L), ops::slice_tokens(x, 1, L)) < 1e-7);
  const tensor<cpu> s = random(shape{N, 4, D}, 4);
  CHECK(rel_diff(ops::unslice_tokens(to_device(s), 1 + L, 2), ops::unslice_tokens(s, 1 + L, 2)) < 1e-7);

  const token_mask m = random_token_mask(N, L, 0.7f, rng(9));
  REQUIRE(m.kept == 2);  // int(9 * 0.3)
  const int64_t k = m.kept;
  const tensor<cpu> e = random(shape{N, 1 + k, D}, 5), token = random(shape{1, 1, D}, 6);
  CHECK(rel_diff(ops::unshuffle_tokens(to_device(e), m.restore, k, to_device(token)),
                 ops::unshuffle_tokens(e, m.restore, k, token)) < 1e-7);
  tensor<cpu> dmask = random(shape{1, 1, D}, 7);
  tensor<cuda> ddmask = to_device(dmask);
  const tensor<cpu> de = ops::unshuffle_tokens_backward(x, m.restore, k, dmask);
  CHECK(rel_diff(ops::unshuffle_tokens_backward(to_device(x), m.restore, k, ddmask), de) < 1e-7);
  CHECK(rel_diff(ddmask, dmask) < 1e-5);
  // No patches (L = 0, so K = 0): the [CLS] rows come back, as on the CPU.
  const tensor<cpu> g0 = random(shape{N, 1, D}, 8);
  tensor<cpu> dmask0(shape{D}, 0.0f);
  tensor<cuda> ddmask0 = to_device(dmask0);
  const std::vector<int32_t> no_patches;
  CHECK(rel_diff(ops::unshuffle_tokens_backward(to_device(g0), no_patches, 0, ddmask0),
                 ops::unshuffle_tokens_backward(g0, no_patches, 0, dmask0)) == 0.0);
  // more kept tokens than patches, or a restore that is not a permutation: value_error before any work
  CHECK_THROWS_AS(ops::unshuffle_tokens_backward(to_device(g0), no_patches, 1, ddmask0), value_error);
  std::vector<int32_t> repeated = m.restore;
  repeated[1] = repeated[0];
  CHECK_THROWS_AS(ops::unshuffle_tokens_backward(to_device(x), repeated, k, ddmask), value_error);
  CHECK_THROWS_AS(ops::unshuffle_tokens(to_device(e), repeated, k, to_device(token)), value_error);
}

TEST_CASE("cuda: masked reconstruction loss (norm-pix and plain) matches ssl::masked_reconstruction") {
  SSL_REQUIRE_CUDA_DEVICE();
  const int64_t N = 6, L = 49, P = 16;
  const tensor<cpu> pred = random(shape{N, L, P}, 11), target = random(shape{N, L, P}, 12, 0.0f, 1.0f);
  const token_mask m = random_token_mask(N, L, 0.75f, rng(13));
  for (bool norm_pix : {true, false}) {
    INFO("norm_pix " << norm_pix);
    const masked_reconstruction_result ref = masked_reconstruction(norm_pix)(pred, target, m.mask);
    const auto r = ops::masked_reconstruction_loss(to_device(pred), to_device(target), m.mask, norm_pix);
    CHECK(std::abs(to_host_scalar(r.value) - ref.value) <= 1e-5f * std::abs(ref.value));
    CHECK(rel_diff(r.grad_pred, ref.grad_pred) < 1e-4);
  }
  CHECK_THROWS_AS(ops::masked_reconstruction_loss(to_device(pred), to_device(target), tensor<cpu>(shape{N, L}, 0.0f)),
                  value_error);
}

TEST_CASE("cuda: masked reconstruction's L1 (SimMIM) and a caller's normaliser match ssl::masked_reconstruction") {
  SSL_REQUIRE_CUDA_DEVICE();
  const int64_t N = 5, L = 49, P = 48;  // P > 32: a warp strides over a patch's values
  const tensor<cpu> pred = random(shape{N, L, P}, 14), target = random(shape{N, L, P}, 15, 0.0f, 1.0f);
  const token_mask m = random_token_mask(N, L, 0.6f, rng(16));
  for (bool norm_pix : {false, true})
    for (double normaliser : {0.0, 200.0}) {
      INFO("norm_pix " << norm_pix << ", normaliser " << normaliser);
      const auto loss = masked_reconstruction::l1(norm_pix);
      const masked_reconstruction_result ref = loss(pred, target, m.mask, normaliser);
      const auto r = loss(to_device(pred), to_device(target), m.mask, normaliser);  // the device overload
      CHECK(std::abs(to_host_scalar(r.value) - ref.value) <= 1e-5f * std::abs(ref.value));
      CHECK(rel_diff(r.grad_pred, ref.grad_pred) < 1e-6);  // +-g or 0 on both sides
    }
  CHECK_THROWS_AS(masked_reconstruction::l1()(to_device(pred), to_device(target), m.mask, -1.0), value_error);
}

TEST_CASE("ViT token ops (CPU reference): results and typed errors") {
  // Device-free: the CPU ops the GPU ones are compared with.
  const int64_t N = 2, L = 4, D = 3;
  const tensor<cpu> x = random(shape{N, 1 + L, D}, 21);
  const tensor<cpu> sl = ops::slice_tokens(x, 1, L);
  CHECK(sl[0] == x[D]);
  const tensor<cpu> back = ops::unslice_tokens(sl, 1 + L, 1);
  CHECK(back[0] == 0.0f);
  CHECK(back[D + 1] == x[D + 1]);
  // restore = identity order with K = 2: patches 0, 1 kept, 2, 3 hidden
  const std::vector<int32_t> restore = {0, 1, 2, 3, 0, 1, 2, 3};
  const tensor<cpu> e = random(shape{N, 3, D}, 22), token = random(shape{D}, 23);
  const tensor<cpu> full = ops::unshuffle_tokens(e, restore, 2, token);
  CHECK(full[(1 + 1) * D] == e[2 * D]);  // patch 1 <- kept row 1 (row 2 of e)
  CHECK(full[(1 + 3) * D + 2] == token[2]);
  tensor<cpu> dmask(shape{D}, 0.0f);
  const tensor<cpu> de = ops::unshuffle_tokens_backward(full, restore, 2, dmask);
  CHECK(de[2 * D + 1] == e[2 * D + 1]);
  CHECK(std::abs(dmask[2] - 4.0f * token[2]) < 1e-6f);  // 2 hidden patches x 2 samples
  CHECK_THROWS_AS(ops::slice_tokens(x, 2, L), shape_error);
  CHECK_THROWS_AS(ops::add_rows(x, tensor<cpu>(shape{L, D}, 0.0f)), shape_error);
  CHECK_THROWS_AS(ops::unshuffle_tokens(e, std::vector<int32_t>{0, 1, 2}, 2, token), shape_error);
  CHECK_THROWS_AS(ops::unshuffle_tokens(e, std::vector<int32_t>{0, 1, 2, 9, 0, 1, 2, 3}, 2, token), value_error);
  // sample 1's indices are not a permutation (1 twice, 3 missing), or more kept tokens than patches
  CHECK_THROWS_AS(ops::unshuffle_tokens(e, std::vector<int32_t>{0, 1, 2, 3, 0, 1, 1, 2}, 2, token), value_error);
  CHECK_THROWS_AS(ops::unshuffle_tokens_backward(full, std::vector<int32_t>{0, 1, 2, 3, 0, 1, 1, 2}, 2, dmask),
                  value_error);
  CHECK_THROWS_AS(ops::unshuffle_tokens_backward(full, restore, 5, dmask), value_error);
  tensor<cpu> acc(shape{1 + L, D}, 0.0f);
  CHECK_THROWS_AS(ops::add_range(acc, 10, x, 0, 10), shape_error);
}
