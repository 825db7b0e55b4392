// fine_tune with MAE's regularisers: mixup / cutmix (soft targets) and random erasing.
#include <catch2/catch.hpp>
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

ev::fine_tune_options options() {
  ev::fine_tune_options o;
  o.epochs = 10;
  o.batch_size = 32;
  o.lr = 1e-2f;
  o.backbone_lr_scale = 1.0f;
  o.warmup_fraction = 0.0;
  o.label_smoothing = 0.1f;
  o.norm = {{0.5f}, {0.3f}};
  return o;
}

}  // namespace

TEST_CASE("fine_tune with mixup and cutmix trains on soft targets, still learns and is reproducible") {
  const labelled train = halves(96, 1), test = halves(64, 2);
  ev::fine_tune_options o = options();
  const auto plain = ev::fine_tune(tiny_vit(), train.images, train.labels, test.images, test.labels, o);
  o.mixup_alpha = 0.8f;
  o.cutmix_alpha = 1.0f;
  const auto mixed = ev::fine_tune(tiny_vit(), train.images, train.labels, test.images, test.labels, o);
  const auto again = ev::fine_tune(tiny_vit(), train.images, train.labels, test.images, test.labels, o);
  CHECK(mixed.report.test_accuracy > 0.8);
  CHECK(mixed.report.train_loss == again.report.train_loss);  // same seed, same run
  CHECK(mixed.report.test_accuracy == again.report.test_accuracy);
  // mixed targets cannot be fitted as well as clean ones: the last epoch's loss stays higher
  CHECK(mixed.report.train_loss > plain.report.train_loss);
  // mix_prob 0: nothing is mixed, the run is the plain one
  o.mix_prob = 0.0f;
  const auto never = ev::fine_tune(tiny_vit(), train.images, train.labels, test.images, test.labels, o);
  CHECK(never.report.train_loss == Approx(plain.report.train_loss).epsilon(1e-6));
  CHECK(never.report.test_accuracy == plain.report.test_accuracy);
}

TEST_CASE("fine_tune rejects negative mixing alphas and a mix_prob outside [0, 1]") {
  const labelled train = halves(16, 3), test = halves(8, 4);
  ev::fine_tune_options o = options();
  o.epochs = 1;
  o.mixup_alpha = -0.1f;
  CHECK_THROWS_WITH(ev::fine_tune(tiny_vit(), train.images, train.labels, test.images, test.labels, o),
                    Catch::Contains("mixup_alpha and cutmix_alpha >= 0") && Catch::Contains("-0.1"));
  o.mixup_alpha = 0.8f;
  o.mix_prob = 1.5f;
  CHECK_THROWS_AS(ev::fine_tune(tiny_vit(), train.images, train.labels, test.images, test.labels, o), ssl::value_error);
}

TEST_CASE("fine_tune_crop_flip with erase_prob erases a box with noise, reproducibly") {
  tensor<cpu> img(ssl::shape{1, 8, 8}, 0.5f);
  const auto plain = ev::fine_tune_crop_flip(8, 1.0f);  // full-area crop of a constant image: unchanged
  const auto erasing = ev::fine_tune_crop_flip(8, 1.0f, 1.0f);
  int erased_images = 0;
  for (uint64_t s = 0; s < 20; ++s) {
    ssl::rng g1(s), g2(s), g3(s);
    const tensor<cpu> a = plain(img, g1), b = erasing(img, g2), c = erasing(img, g3);
    int changed = 0;
    for (int64_t i = 0; i < 64; ++i) {
      CHECK(a[i] == 0.5f);
      CHECK(b[i] == c[i]);
      CHECK((b[i] >= 0.0f && b[i] <= 1.0f));
      changed += b[i] != 0.5f;
    }
    erased_images += changed > 0;
  }
  CHECK(erased_images >= 15);  // p = 1; a box fails to fit only now and then
  CHECK_THROWS_AS(ev::fine_tune_crop_flip(8, 0.5f, 1.5f), ssl::value_error);
}
