// eval::knn_classify on device features (backend/cuda/knn.cuh) against the CPU overload and the
// PyTorch W5 fixture.
#include <cmath>
#include <ssl/eval/knn.hpp>
#include <support/fixtures.hpp>

#include "../eval/eval_support.hpp"
#include "cuda_test.cuh"

using namespace ssl;

TEST_CASE("cuda: k-NN on device features matches the PyTorch fixture and the CPU path") {
  SSL_REQUIRE_CUDA_DEVICE();
  ssl_test::fixture f("eval/knn.json");
  eval::knn_options o;
  o.k = int(f.scalar("knn_k"));
  const auto ytr = eval_test::labels(f.tensor("knn_train_y")), yte = eval_test::labels(f.tensor("knn_test_y"));
  const auto r = eval::knn_classify(to_device(f.tensor("knn_train")), ytr, to_device(f.tensor("knn_test")), yte, o);
  CHECK(r.predictions == eval_test::labels(f.tensor("knn_pred")));
  CHECK(r.accuracy == Approx(f.scalar("knn_acc")).epsilon(1e-6));

  // Random features, several chunks' worth of queries is not needed for the logic (one chunk holds
  // 2^26 cosines); 1100 queries against 3000 rows, k = 20 and k = 1. Cosines differ from the CPU's
  // by float rounding only, so at most a near-tie in a thousand may vote differently.
  const tensor<cpu> train = eval_test::randn(3000, 32, 41), test = eval_test::randn(1100, 32, 42);
  std::vector<int> labels(3000);
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = int((i * 7919) % 10);
  for (int k : {20, 1}) {
    INFO("k " << k);
    eval::knn_options q;
    q.k = k;
    const auto cpu_r = eval::knn_classify(train, labels, test, {}, q);
    const auto gpu_r = eval::knn_classify(to_device(train), labels, to_device(test), {}, q);
    REQUIRE(gpu_r.predictions.size() == cpu_r.predictions.size());
    int differ = 0;
    for (size_t i = 0; i < cpu_r.predictions.size(); ++i) differ += gpu_r.predictions[i] != cpu_r.predictions[i];
    CHECK(differ <= 1);
  }
}

TEST_CASE("cuda: k-NN on device features rejects bad input with typed errors") {
  SSL_REQUIRE_CUDA_DEVICE();
  tensor<cpu> train = eval_test::randn(10, 4, 1);
  const tensor<cpu> test = eval_test::randn(3, 4, 2);
  const std::vector<int> y(10, 1);
  eval::knn_options o;
  o.k = 11;
  CHECK_THROWS_AS(eval::knn_classify(to_device(train), y, to_device(test), {}, o), value_error);
  CHECK_THROWS_AS(eval::knn_classify(to_device(train), std::vector<int>(9, 0), to_device(test)), shape_error);
  o.k = 3;
  CHECK(eval::knn_classify(to_device(train), y, to_device(test), {}, o).predictions == std::vector<int>(3, 1));
  train[7 * 4 + 2] = NAN;
  CHECK_THROWS_AS(eval::knn_classify(to_device(train), y, to_device(test), {}, o), numeric_error);
}
