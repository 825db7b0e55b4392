// A full SimCLR training step (W1's model at a small batch) gives the same loss, gradients
// and updated parameters on both backends; the model code is the same, only B differs.
#include <ssl/backend/cuda/parity/convnet_simclr.cuh>

#include "cuda_test.cuh"

using namespace ssl;
using ssl_cuda_test::random;
using ssl_cuda_test::rel_diff;

TEST_CASE("cuda: SimCLR step (ConvNet-S + head + NT-Xent + SGD) matches the CPU step") {
  SSL_REQUIRE_CUDA_DEVICE();
  parity::convnet_simclr<cpu> host_model(42);
  parity::convnet_simclr<cuda> dev_model(42);
  for (int step = 0; step < 2; ++step) {
    INFO("step " << step);
    const tensor<cpu> x = random(shape{16, 1, 28, 28}, 100 + step, 0.0f, 1.0f);
    const float loss = host_model.forward_backward(x);
    const float dev_loss = to_host_scalar(dev_model.forward_backward(to_device(x)));
    CHECK(std::abs(dev_loss - loss) <= 1e-4f * std::abs(loss));
    for (int i = 0; i < parity::convnet_simclr<cpu>::param_count; ++i) {
      INFO("parameter " << i);
      CHECK(rel_diff(dev_model.param(i).grad, host_model.param(i).grad) < 2e-3);
    }
    host_model.update();
    dev_model.update();
    for (int i = 0; i < parity::convnet_simclr<cpu>::param_count; ++i) {
      INFO("parameter " << i);
      CHECK(rel_diff(dev_model.param(i).value, host_model.param(i).value) < 1e-4);
    }
    CHECK(rel_diff(dev_model.running_mean(0), host_model.running_mean(0)) < 1e-4);
  }
}
