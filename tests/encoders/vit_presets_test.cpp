// vit_options presets (ViT-T / S / B / L, DINOv2's ViT-g) and parameter_count without building.
#include <catch2/catch.hpp>
#include <ssl/encoders/vit.hpp>

using ssl::vit_options;

TEST_CASE("vit_options::parameter_count equals the count of the built vit for every option that adds weights") {
  const vit_options plain = vit_options::tiny4();
  vit_options swiglu = plain;
  swiglu.ffn = ssl::ffn_kind::swiglu;
  vit_options sincos = plain;
  sincos.pos = ssl::pos_embed_kind::sincos;  // the frozen table counts as ssl::parameter_count does
  vit_options odd{.image_size = 30, .patch = 6, .in_channels = 3, .dim = 48, .depth = 3, .heads = 4, .mlp_ratio = 2.5f};
  for (const vit_options& o : {plain, plain.with_dinov2(), plain.with_dinov2(4), swiglu, swiglu.with_dinov2(2), sincos,
                               odd, odd.with_dinov2(1)}) {
    ssl::vit<> v(o);
    INFO("dim " << o.dim << " registers " << o.registers << " swiglu " << (o.ffn == ssl::ffn_kind::swiglu));
    CHECK(o.parameter_count() == ssl::parameter_count(v));
  }
  CHECK(plain.parameter_count() == 2682624);  // shared/WORKLOADS.md's ViT-T/4
}

TEST_CASE("ViT presets have the published backbone sizes") {
  // timm / torchvision vit_*_patch16_224 counts less their 1000-class head (D 1000 + 1000)
  CHECK(vit_options::tiny(224, 16).parameter_count() == 5717416 - 193000);
  CHECK(vit_options::small(224, 16).parameter_count() == 22050664 - 385000);
  CHECK(vit_options::base(224, 16).parameter_count() == 86567656 - 769000);
  CHECK(vit_options::large(224, 16).parameter_count() == 304326632 - 1025000);
  const vit_options b = vit_options::base(224, 16);
  CHECK(b.dim == 768);
  CHECK(b.heads == 12);
  CHECK(b.depth == 12);
  const vit_options l = vit_options::large(224, 16);
  CHECK(l.dim == 1024);
  CHECK(l.heads == 16);
  CHECK(l.depth == 24);
}

TEST_CASE("dinov2_giant is DINOv2's ViT-g/14: SwiGLU width 4096, LayerScale, mask token, about 1.1e9 weights") {
  const vit_options g = vit_options::dinov2_giant(518);
  CHECK(g.dim == 1536);
  CHECK(g.depth == 40);
  CHECK(g.heads == 24);
  CHECK(g.patch == 14);
  CHECK(g.ffn == ssl::ffn_kind::swiglu);
  CHECK(g.block_options(0).hidden_features() == 4096);
  CHECK(g.layer_scale == Approx(1e-5f));
  CHECK(g.mask_token);
  CHECK(g.registers == 0);
  CHECK(vit_options::dinov2_giant(518, 14, 3, 4).registers == 4);
  // per block: norms 4 D, qkv 3 D^2 + 3 D, proj D^2 + D, w12 2 H D + 2 H, w3 H D + D, LayerScale 2 D
  const int64_t D = 1536, H = 4096;
  const int64_t block = 4 * D + 3 * D * D + 3 * D + D * D + D + 2 * H * D + 2 * H + H * D + D + 2 * D;
  CHECK(g.block_options(7).parameter_count() == block);
  const int64_t total = 3 * 14 * 14 * D + D + D + (37 * 37 + 1) * D + D + 40 * block + 2 * D;
  CHECK(g.parameter_count() == total);
  CHECK(total == 1136480768);  // torch.hub's dinov2_vitg14 (518, patch 14, mask token included)
}

TEST_CASE("block_options spreads stochastic depth linearly to drop_path at the last block") {
  vit_options o = vit_options::tiny4();
  o.drop_path = 0.1f;
  CHECK(o.block_options(0).drop_path == 0.0f);
  CHECK(o.block_options(5).drop_path == Approx(0.1f));
  CHECK(o.block_options(2).drop_path == Approx(0.04f));
}
