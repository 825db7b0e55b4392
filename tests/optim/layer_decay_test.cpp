// Layer-wise lr decay (optim/layer_decay.hpp) and the encoders' layer ids (LayeredEncoder).
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <ssl/encoders/convnet_s.hpp>
#include <ssl/encoders/mlp.hpp>
#include <ssl/encoders/resnet.hpp>
#include <ssl/encoders/vit.hpp>
#include <ssl/nn/linear.hpp>
#include <ssl/optim/adamw.hpp>
#include <ssl/optim/layer_decay.hpp>

using ssl::cpu;
using ssl::tensor;

namespace {

// depth 3, 2 registers, a mask token: every kind of ViT parameter name
ssl::vit<> small_vit() {
  return ssl::vit<>({.image_size = 8, .patch = 4, .in_channels = 1, .dim = 8, .depth = 3, .heads = 2,
                     .mask_token = true, .registers = 2},
                    ssl::rng(3));
}

// The layer id a ViT parameter should have, from its name alone (BEiT / MAE's get_layer_id_for_vit).
int64_t expected_vit_layer(const std::string& n, int64_t depth) {
  if (n.rfind("blocks.", 0) == 0) return 1 + std::stoll(n.substr(7, n.find('.', 7) - 7));
  if (n.rfind("norm.", 0) == 0) return depth + 1;
  return 0;
}

}  // namespace

static_assert(ssl::LayeredEncoder<ssl::vit<>>);
static_assert(ssl::LayeredEncoder<ssl::convnet_s<>>);
static_assert(ssl::LayeredEncoder<ssl::resnet<>>);
static_assert(!ssl::LayeredEncoder<ssl::mlp_encoder<>>);

TEST_CASE("vit, convnet_s and resnet give their parameters layer ids from input to output") {
  auto v = small_vit();
  CHECK(v.layer_count() == 5);
  int64_t seen_blocks = 0;
  for (auto& r : ssl::parameters(v)) {
    INFO(r.name);
    CHECK(v.layer_of(r.name) == expected_vit_layer(r.name, 3));
    seen_blocks += r.name.rfind("blocks.2.", 0) == 0;
  }
  CHECK(seen_blocks > 0);
  CHECK(v.layer_of("register_tokens") == 0);
  CHECK(v.layer_of("mask_token") == 0);
  CHECK(v.layer_of("patch_embed.proj.weight") == 0);
  CHECK(v.layer_of("blocks.0.attn.qkv.weight") == 1);
  CHECK(v.layer_of("norm.bias") == 4);

  ssl::convnet_s<> c(1, ssl::rng(1));
  CHECK(c.layer_count() == 4);
  for (auto& r : ssl::parameters(c)) {
    INFO(r.name);
    CHECK(c.layer_of(r.name) == std::stoll(r.name.substr(0, r.name.find('.'))) / 3);
  }

  ssl::resnet<> rn({.in_channels = 1}, ssl::rng(2));
  CHECK(rn.layer_count() == 5);
  CHECK(rn.layer_of("conv1.weight") == 0);
  CHECK(rn.layer_of("bn1.bias") == 0);
  for (auto& r : ssl::parameters(rn)) {
    INFO(r.name);
    const int64_t expected = r.name.rfind("layer", 0) == 0 ? r.name[5] - '0' : 0;
    CHECK(rn.layer_of(r.name) == expected);
  }
}

TEST_CASE("layer_of rejects names the encoder does not have with a value_error naming it") {
  auto v = small_vit();
  CHECK_THROWS_AS(v.layer_of("blocks.3.norm1.weight"), ssl::value_error);  // depth 3: blocks 0..2
  CHECK_THROWS_WITH(v.layer_of("blocks.3.norm1.weight"),
                    Catch::Contains("blocks.<0..2>") && Catch::Contains("got 'blocks.3.norm1.weight'"));
  CHECK_THROWS_AS(v.layer_of("blocks.x.norm1.weight"), ssl::value_error);
  CHECK_THROWS_AS(v.layer_of("blocks.1"), ssl::value_error);
  CHECK_THROWS_AS(v.layer_of("head.weight"), ssl::value_error);
  const ssl::vit<> plain({.image_size = 8, .patch = 4, .in_channels = 1, .dim = 8, .depth = 1, .heads = 2});
  CHECK_THROWS_AS(plain.layer_of("register_tokens"), ssl::value_error);
  CHECK_THROWS_AS(plain.layer_of("mask_token"), ssl::value_error);

  ssl::convnet_s<> c(1, ssl::rng(1));
  CHECK_THROWS_WITH(c.layer_of("2.weight"), Catch::Contains("convnet_s::layer_of") && Catch::Contains("'2.weight'"));
  CHECK_THROWS_AS(c.layer_of("12.weight"), ssl::value_error);
  CHECK_THROWS_AS(c.layer_of("weight"), ssl::value_error);
  ssl::resnet<> rn({.in_channels = 1}, ssl::rng(2));
  CHECK_THROWS_AS(rn.layer_of("layer5.0.conv1.weight"), ssl::value_error);
  CHECK_THROWS_AS(rn.layer_of("fc.weight"), ssl::value_error);
}

TEST_CASE("layer_decay_groups scale each encoder layer's lr by decay^(L-1-l) and leave other parameters alone") {
  auto v = small_vit();
  ssl::linear<cpu> head(8, 4, true, ssl::rng(9));
  ssl::param_list<cpu> params;
  v.collect(params, "encoder");
  head.collect(params, "head");
  const float lr = 1e-2f, wd = 0.05f, decay = 0.5f, base = 0.1f;
  ssl::adamw opt(params, {.lr = lr, .weight_decay = wd}, ssl::layer_decay_groups(v, "encoder", decay, base));
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string& n = params[i].name;
    INFO(n);
    const bool is_weight = params[i].p->kind == ssl::param_kind::weight;
    if (n.rfind("head.", 0) == 0) {
      CHECK(opt.lr_of(i) == lr);  // the default group
      CHECK(opt.weight_decay_of(i) == wd);
      continue;
    }
    const int64_t l = expected_vit_layer(n.substr(8), 3);
    CHECK(opt.lr_of(i) == Approx(lr * base * std::pow(decay, float(4 - l))).epsilon(1e-6));
    CHECK(opt.weight_decay_of(i) == (is_weight ? wd : 0.0f));
  }

  // The scale reaches the update: Adam's first step moves every element by about its lr (|m / sqrt(v)| = 1).
  for (auto& r : params) r.p->grad.fill(1.0f);
  ssl::adamw plain(params, {.lr = lr, .weight_decay = 0.0f}, ssl::layer_decay_groups(v, "encoder", decay, base));
  std::vector<std::vector<float>> before;
  for (auto& r : params) before.push_back(r.p->value.to_vector());
  plain.step();
  for (size_t i = 0; i < params.size(); ++i) {
    INFO(params[i].name);
    const float moved = before[i][0] - params[i].p->value.to_vector()[0];
    CHECK(moved == Approx(plain.lr_of(i)).epsilon(1e-3));
  }
}

TEST_CASE("layer_decay_groups rejects a decay outside (0, 1] and a negative base scale") {
  auto v = small_vit();
  CHECK_THROWS_AS(ssl::layer_decay_groups(v, "encoder", 0.0f), ssl::value_error);
  CHECK_THROWS_WITH(ssl::layer_decay_groups(v, "encoder", 1.5f), Catch::Contains("decay in (0, 1]") &&
                                                                     Catch::Contains("got 1.5"));
  CHECK_THROWS_AS(ssl::layer_decay_groups(v, "encoder", 0.75f, -1.0f), ssl::value_error);
  // with no prefix every parameter must be the encoder's: a stranger is named in the error
  ssl::linear<cpu> head(8, 4, true, ssl::rng(9));
  ssl::param_list<cpu> params;
  v.collect(params, "");
  head.collect(params, "head");
  CHECK_THROWS_WITH(ssl::adamw(params, {}, ssl::layer_decay_groups(v, "", 0.75f)), Catch::Contains("'head.weight'"));
}

static_assert(ssl::NoWeightDecayList<ssl::vit<>>);
static_assert(!ssl::NoWeightDecayList<ssl::convnet_s<>>);

TEST_CASE("vit names its tokens and position table as no_weight_decay; layer_decay_groups exempts them") {
  auto v = small_vit();  // mask token and 2 registers: all four names
  const std::vector<std::string> listed = ssl::no_weight_decay_names(v);
  CHECK(listed == std::vector<std::string>{"cls_token", "pos_embed", "mask_token", "register_tokens"});
  CHECK(ssl::no_weight_decay_names(ssl::vit<>({.image_size = 8, .patch = 4, .in_channels = 1, .dim = 8, .depth = 1,
                                                .heads = 2})) == std::vector<std::string>{"cls_token", "pos_embed"});
  CHECK(ssl::no_weight_decay_names(ssl::convnet_s<>()).empty());

  ssl::param_list<cpu> params;
  v.collect(params, "encoder");
  const float lr = 1e-2f, wd = 0.05f, decay = 0.5f;
  ssl::adamw opt(params, {.lr = lr, .weight_decay = wd}, ssl::layer_decay_groups(v, "encoder", decay, 1.0f, listed));
  int exempted = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string n = params[i].name.substr(8);
    INFO(n);
    const bool is_listed = std::find(listed.begin(), listed.end(), n) != listed.end();
    exempted += is_listed;
    const bool is_weight = params[i].p->kind == ssl::param_kind::weight;
    CHECK(opt.weight_decay_of(i) == (is_weight && !is_listed ? wd : 0.0f));
    // the listed weights keep their layer's lr scale (layer 0: decay^(L - 1) with L = depth + 2 = 5)
    CHECK(opt.lr_of(i) == Approx(lr * std::pow(decay, float(4 - expected_vit_layer(n, 3)))).epsilon(1e-6));
  }
  CHECK(exempted == 4);
  // a name the encoder does not have is an error naming it, not a silent no-op
  CHECK_THROWS_WITH(ssl::layer_decay_groups(v, "encoder", decay, 1.0f, {"cls_tokn"}), Catch::Contains("'cls_tokn'"));
}
