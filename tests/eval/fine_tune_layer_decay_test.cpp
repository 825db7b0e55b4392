// fine_tune with layer-wise lr decay and stochastic depth (a ViT), and the errors for encoders without them.
#include <catch2/catch.hpp>
#include <cmath>
#include <ssl/encoders/mlp.hpp>
#include <ssl/encoders/vit.hpp>
#include <ssl/eval/fine_tune.hpp>

#include "fine_tune_support.hpp"

using ssl::cpu;
using ssl::tensor;
namespace ev = ssl::eval;
using eval_test::halves;
using eval_test::labelled;
using eval_test::tiny_vit;

namespace {

// Mean absolute change of the parameter `name` between two ViTs.
double mean_change(ssl::vit<>& a, ssl::vit<>& b, const std::string& name) {
  auto pa = ssl::parameters(a), pb = ssl::parameters(b);
  for (size_t i = 0; i < pa.size(); ++i)
    if (pa[i].name == name) {
      const auto x = pa[i].p->value.to_vector(), y = pb[i].p->value.to_vector();
      double s = 0;
      for (size_t j = 0; j < x.size(); ++j) s += std::abs(double(x[j]) - double(y[j]));
      return s / double(x.size());
    }
  FAIL("no parameter " << name);
  return 0;
}

const ev::input_normalization norm{{0.5f}, {0.3f}};

}  // namespace

TEST_CASE("fine_tune with layer_decay moves the embeddings less than without, and learns") {
  const labelled train = halves(96, 1), test = halves(64, 2);
  ssl::vit<> enc = tiny_vit();
  ev::fine_tune_options o;
  o.epochs = 10;
  o.batch_size = 32;
  o.lr = 1e-2f;
  o.backbone_lr_scale = 1.0f;
  o.warmup_fraction = 0.0;
  o.norm = norm;
  auto flat = ev::fine_tune(enc, train.images, train.labels, test.images, test.labels, o);
  o.layer_decay = 0.1f;  // 4 layer ids: embeddings at 1e-3 of the head's lr, the final norm at 1
  auto decayed = ev::fine_tune(enc, train.images, train.labels, test.images, test.labels, o);
  auto again = ev::fine_tune(enc, train.images, train.labels, test.images, test.labels, o);

  const double flat_embed = mean_change(flat.encoder, enc, "patch_embed.proj.weight");
  const double decayed_embed = mean_change(decayed.encoder, enc, "patch_embed.proj.weight");
  const double decayed_norm = mean_change(decayed.encoder, enc, "norm.weight");
  CHECK(flat_embed > 0);
  CHECK(decayed_embed < 0.01 * flat_embed);
  CHECK(decayed_embed < 0.01 * decayed_norm);
  CHECK(mean_change(decayed.encoder, again.encoder, "blocks.1.mlp.fc1.weight") == 0);  // reproducible
  CHECK(decayed.report.test_accuracy > 0.8);
}

TEST_CASE("fine_tune's drop_path switches on the ViT's stochastic depth for the run") {
  const labelled train = halves(64, 3), test = halves(32, 4);
  ssl::vit<> enc = tiny_vit();
  ev::fine_tune_options o;
  o.epochs = 1;
  o.batch_size = 32;
  o.norm = norm;
  auto plain = ev::fine_tune(enc, train.images, train.labels, test.images, test.labels, o);
  o.drop_path = 0.5f;
  auto dropped = ev::fine_tune(enc, train.images, train.labels, test.images, test.labels, o);
  CHECK(enc.options().drop_path == 0.0f);  // the caller's encoder is untouched
  CHECK(dropped.encoder.options().drop_path == 0.5f);
  CHECK(mean_change(plain.encoder, dropped.encoder, "blocks.1.mlp.fc2.weight") > 0);  // the last block's branches dropped
}

TEST_CASE("fine_tune rejects layer_decay and drop_path for encoders without layers or stochastic depth") {
  const labelled train = halves(16, 5), test = halves(8, 6);
  const ssl::mlp_encoder<> mlp(64, {8}, 1);
  ev::fine_tune_options o;
  o.epochs = 1;
  o.batch_size = 8;
  o.norm = norm;
  o.layer_decay = 0.75f;
  CHECK_THROWS_AS(ev::fine_tune(mlp, train.images, train.labels, test.images, test.labels, o), ssl::value_error);
  CHECK_THROWS_WITH(ev::fine_tune(mlp, train.images, train.labels, test.images, test.labels, o),
                    Catch::Contains("layer_decay 0.75 needs an encoder with layer ids"));
  o.layer_decay = 1.0f;
  o.drop_path = 0.1f;
  CHECK_THROWS_WITH(ev::fine_tune(mlp, train.images, train.labels, test.images, test.labels, o),
                    Catch::Contains("drop_path 0.1 needs an encoder with stochastic depth"));
  const ssl::vit<> enc = tiny_vit();
  o.drop_path = -1.0f;
  o.layer_decay = 0.0f;
  CHECK_THROWS_WITH(ev::fine_tune(enc, train.images, train.labels, test.images, test.labels, o),
                    Catch::Contains("layer_decay in (0, 1]"));
  o.layer_decay = 1.0f;
  o.drop_path = 1.0f;
  CHECK_THROWS_AS(ev::fine_tune(enc, train.images, train.labels, test.images, test.labels, o), ssl::value_error);
}

TEST_CASE("fine_tune exempts the ViT's cls_token and pos_embed from weight decay unless decay_tokens") {
  // lr 1e-7 makes Adam's own steps negligible; weight decay 1e5 then shrinks every decayed weight by
  // lr * wd = 1% a step. Only the exempt tokens keep their values.
  const labelled train = halves(32, 7), test = halves(16, 8);
  ssl::vit<> enc = tiny_vit();
  ev::fine_tune_options o;
  o.epochs = 3;
  o.batch_size = 16;  // 6 steps
  o.lr = 1e-7f;
  o.backbone_lr_scale = 1.0f;
  o.weight_decay = 1e5f;
  o.warmup_fraction = 0.0;
  o.schedule = ev::fine_tune_schedule::constant;
  o.norm = norm;
  for (const float layer_decay : {1.0f, 0.9f}) {
    INFO("layer_decay " << layer_decay);
    o.layer_decay = layer_decay;
    o.decay_tokens = false;
    auto exempt = ev::fine_tune(enc, train.images, train.labels, test.images, test.labels, o);
    o.decay_tokens = true;
    auto decayed = ev::fine_tune(enc, train.images, train.labels, test.images, test.labels, o);
    auto norm_of = [](ssl::vit<>& v, const std::string& name) {
      for (auto& r : ssl::parameters(v))
        if (r.name == name) return double(r.p->value.vec().norm());
      FAIL("no parameter " << name);
      return 0.0;
    };
    for (const char* token : {"cls_token", "pos_embed"}) {
      INFO(token);
      const double before = norm_of(enc, token);
      // the last steps' lr is below lr * layer scale, so the shrink is at least (1 - 1e-2 * scale)^6 ~ 0.94-0.97
      CHECK(norm_of(exempt.encoder, token) == Approx(before).epsilon(1e-4));
      CHECK(norm_of(decayed.encoder, token) < 0.98 * before);
    }
    // ordinary weights shrink either way
    CHECK(norm_of(exempt.encoder, "patch_embed.proj.weight") < 0.98 * norm_of(enc, "patch_embed.proj.weight"));
  }
}
