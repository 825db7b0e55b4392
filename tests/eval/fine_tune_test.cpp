#include <catch2/catch.hpp>
#include <ssl/encoders/convnet_s.hpp>
#include <ssl/encoders/mlp.hpp>
#include <ssl/eval/fine_tune.hpp>
#include <ssl/eval/linear_probe.hpp>

using ssl::cpu;
using ssl::tensor;
namespace ev = ssl::eval;

namespace {

struct labelled {
  tensor<cpu> images;  // (N, 1, S, S) in [0, 1]
  std::vector<int> labels;
};

// Class k in [0, K) raises a fixed 3x3 patch (one per class) by `lift` on uniform noise in
// [0, 1 - lift]: a matched filter separates the classes well, but the lift is small against the
// noise summed over the other pixels, so a few random projections of the image hardly see it.
labelled patch_problem(int64_t n, int64_t side, int classes, float lift, uint64_t seed) {
  labelled d{tensor<cpu>(ssl::shape{n, 1, side, side}), std::vector<int>(size_t(n))};
  ssl::rng g(seed);
  for (int64_t i = 0; i < n; ++i) {
    const int k = int(g.below(uint32_t(classes)));
    d.labels[size_t(i)] = k;
    float* img = d.images.data() + i * side * side;
    for (int64_t p = 0; p < side * side; ++p) img[p] = g.uniform(0.0f, 1.0f - lift);
    // a different 3x3 place per class, spread over the image (inside it for any side >= 4)
    const int64_t top = 1 + (side - 4) * k / std::max(1, classes - 1), left = (side - 3) * k / std::max(1, classes - 1);
    for (int64_t y = top; y < top + 3; ++y)
      for (int64_t x = left; x < left + 3; ++x) img[y * side + x] += lift;
  }
  return d;
}

// Every parameter value and BN buffer of a convnet_s, flattened.
std::vector<float> state_of(ssl::convnet_s<>& e) {
  std::vector<float> v;
  for (auto& r : ssl::parameters(e)) {
    const auto x = r.p->value.to_vector();
    v.insert(v.end(), x.begin(), x.end());
  }
  std::vector<std::pair<std::string, tensor<cpu>*>> bufs;
  e.collect_buffers(bufs, "");
  for (auto& [n, t] : bufs) {
    const auto x = t->to_vector();
    v.insert(v.end(), x.begin(), x.end());
  }
  return v;
}

const ev::input_normalization uniform_norm{{0.5f}, {0.29f}};

}  // namespace

TEST_CASE("fine-tuning learns a task that frozen random features cannot separate") {
  const labelled train = patch_problem(768, 12, 3, 0.3f, 1), test = patch_problem(384, 12, 3, 0.3f, 2);
  ssl::mlp_encoder<> random_enc(144, {32, 8}, 7);

  // linear probe (L-BFGS on standardised features) on the frozen random encoder
  const auto probe = ev::linear_probe(ev::extract_features(random_enc, train.images, uniform_norm), train.labels,
                                      ev::extract_features(random_enc, test.images, uniform_norm), test.labels);

  ev::fine_tune_options o;
  o.epochs = 15;
  o.batch_size = 64;
  o.lr = 3e-3f;
  o.backbone_lr_scale = 1.0f;
  o.weight_decay = 0.0f;
  o.norm = uniform_norm;
  const auto ft = ev::fine_tune(random_enc, train.images, train.labels, test.images, test.labels, o);
  INFO("probe " << probe.test_accuracy << ", fine-tune " << ft.report.test_accuracy << " (train loss "
                << ft.report.train_loss << ", train acc " << ft.report.train_accuracy << ")");
  CHECK(ft.report.steps == 15 * (768 / 64));
  CHECK(ft.report.epochs == Approx(15.0));
  CHECK(probe.test_accuracy < 0.6);
  CHECK(ft.report.test_accuracy > 0.85);
  CHECK(ft.report.test_accuracy > probe.test_accuracy + 0.25);
  CHECK(ft.report.train_loss < 0.5);
  CHECK(ft.report.train_accuracy > 0.8);

  // backbone_lr_scale 0 freezes the encoder: only the head learns, and it stays far behind
  o.backbone_lr_scale = 0.0f;
  auto frozen = ev::fine_tune(random_enc, train.images, train.labels, test.images, test.labels, o);
  CHECK(frozen.report.test_accuracy < ft.report.test_accuracy - 0.2);
  CHECK(frozen.encoder.layer(0).weight().value.to_vector() == random_enc.layer(0).weight().value.to_vector());
}

TEST_CASE("fine_tune copies the encoder, is reproducible per seed and uses the augmentation") {
  const labelled train = patch_problem(40, 8, 2, 0.3f, 3), test = patch_problem(16, 8, 2, 0.3f, 4);
  ssl::convnet_s<> enc(1, ssl::rng(5));
  const std::vector<float> before = state_of(enc);

  ev::fine_tune_options o;
  o.epochs = 2;
  o.batch_size = 16;
  o.norm = uniform_norm;
  o.augmentation = ev::fine_tune_crop_flip(8);
  auto a = ev::fine_tune(enc, train.images, train.labels, test.images, test.labels, o);
  auto b = ev::fine_tune(enc, train.images, train.labels, test.images, test.labels, o);
  CHECK(state_of(enc) == before);  // parameters and BN running statistics of the caller's encoder
  CHECK(state_of(a.encoder) != before);
  CHECK(a.report.steps == 2 * (40 / 16));
  CHECK(a.report.train_loss == b.report.train_loss);
  CHECK(a.report.test_accuracy == b.report.test_accuracy);
  CHECK(state_of(a.encoder) == state_of(b.encoder));
  CHECK(a.head.weight().value.to_vector() == b.head.weight().value.to_vector());

  o.seed = 1;
  auto c = ev::fine_tune(enc, train.images, train.labels, test.images, test.labels, o);
  CHECK(state_of(c.encoder) != state_of(a.encoder));
  o.seed = 0;
  o.augmentation = {};
  auto d = ev::fine_tune(enc, train.images, train.labels, test.images, test.labels, o);
  CHECK(state_of(d.encoder) != state_of(a.encoder));

  // a wall-clock budget stops the run early, after at least one step
  o.epochs = 1000;
  o.budget_seconds = 1e-9;
  auto e = ev::fine_tune(enc, train.images, train.labels, test.images, test.labels, o);
  CHECK(e.report.steps == 1);
}

TEST_CASE("fine_tune rejects bad input with typed errors naming expected and found") {
  const labelled train = patch_problem(12, 8, 3, 0.3f, 5), test = patch_problem(6, 8, 3, 0.3f, 6);
  const ssl::mlp_encoder<> enc(64, {8}, 1);
  ev::fine_tune_options o;
  o.epochs = 1;
  o.batch_size = 4;
  o.num_classes = 3;
  auto run = [&](const tensor<cpu>& xtr, std::vector<int> ytr, const tensor<cpu>& xte, std::vector<int> yte,
                 const ev::fine_tune_options& opt) { (void)ev::fine_tune(enc, xtr, ytr, xte, yte, opt); };

  std::vector<int> short_labels(train.labels.begin(), train.labels.end() - 1);
  CHECK_THROWS_AS(run(train.images, short_labels, test.images, test.labels, o), ssl::shape_error);
  CHECK_THROWS_WITH(run(train.images, short_labels, test.images, test.labels, o),
                    Catch::Contains("expected 12 train labels") && Catch::Contains("got 11"));
  CHECK_THROWS_WITH(run(train.images, train.labels, test.images, {0, 1}, o), Catch::Contains("expected 6 test labels"));

  auto bad_test = test.labels;
  bad_test[2] = 3;  // classes are 0..2
  CHECK_THROWS_AS(run(train.images, train.labels, test.images, bad_test, o), ssl::value_error);
  CHECK_THROWS_WITH(run(train.images, train.labels, test.images, bad_test, o),
                    Catch::Contains("expected labels in [0, 3)") && Catch::Contains("found 3 at index 2"));
  auto negative = train.labels;
  negative[0] = -1;
  CHECK_THROWS_AS(run(train.images, negative, test.images, test.labels, o), ssl::value_error);

  const tensor<cpu> empty(ssl::shape{0, 1, 8, 8});
  CHECK_THROWS_WITH(run(empty, {}, test.images, test.labels, o), Catch::Contains("at least one train image"));
  CHECK_THROWS_AS(run(train.images, train.labels, empty, {}, o), ssl::shape_error);
  CHECK_THROWS_WITH(run(tensor<cpu>(ssl::shape{12, 64}), train.labels, test.images, test.labels, o),
                    Catch::Contains("expected train images (N, C, H, W)"));

  auto rgb_norm = o;
  rgb_norm.norm = ev::input_normalization{{0.5f, 0.5f, 0.5f}, {0.2f, 0.2f, 0.2f}};
  CHECK_THROWS_WITH(run(train.images, train.labels, test.images, test.labels, rgb_norm),
                    Catch::Contains("expected 1 normalisation means") && Catch::Contains("got 3"));
  auto zero_batch = o;
  zero_batch.batch_size = 0;
  CHECK_THROWS_AS(run(train.images, train.labels, test.images, test.labels, zero_batch), ssl::value_error);
  auto bad_lr = o;
  bad_lr.lr = 0.0f;
  CHECK_THROWS_WITH(run(train.images, train.labels, test.images, test.labels, bad_lr), Catch::Contains("lr > 0"));
  auto bad_scale = o;
  bad_scale.backbone_lr_scale = -1.0f;
  CHECK_THROWS_AS(run(train.images, train.labels, test.images, test.labels, bad_scale), ssl::value_error);

  // an augmentation that changes the channel count is caught before the encoder sees it
  auto bad_aug = o;
  bad_aug.augmentation = [](const tensor<cpu>&, ssl::rng&) { return tensor<cpu>(ssl::shape{3, 8, 8}, 0.0f); };
  CHECK_THROWS_WITH(run(train.images, train.labels, test.images, test.labels, bad_aug),
                    Catch::Contains("expected a (1, H, W) image") && Catch::Contains("(3, 8, 8)"));
  // an encoder input mismatch surfaces as the encoder's own shape_error
  CHECK_THROWS_AS(run(tensor<cpu>(ssl::shape{12, 1, 7, 7}), train.labels, tensor<cpu>(ssl::shape{6, 1, 7, 7}),
                      test.labels, o),
                  ssl::shape_error);
}
