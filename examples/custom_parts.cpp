// Swapping parts: a user's own head and loss plugged into ssl::simclr.
//
// A method is a class template over its parts; any type that satisfies the part's concept fits:
//   * Head:  a Module (forward / backward / infer / collect) with in_dim(), out_dim() and
//            `static constexpr bool is_head = true`.
//   * Loss:  const-callable on the method's inputs, returning a struct with `value` and the
//            gradient(s) the method reads (simclr reads `grad_z`).
// Here: `linear_tanh_head` (y = tanh(x W^T + b)) and `nt_xent_with_norm_penalty`
// (NT-Xent + lambda mean |z_i|^2), trained for a few steps on random data. A part that does not
// fit fails with one readable static_assert, e.g. simclr<mlp_encoder<>, ssl::linear<>>:
//   "simclr<E, H, L>: H must satisfy ssl::Head (a Module with in_dim(), out_dim(), is_head)".
#include <cmath>
#include <cstdio>
#include <ssl/encoders/mlp.hpp>
#include <ssl/methods/simclr.hpp>
#include <ssl/nn/linear.hpp>
#include <ssl/optim/adamw.hpp>

using namespace ssl;

/// y = tanh(x W^T + b): x (N, in) -> (N, out). Built on ssl::linear; its own saved state.
class linear_tanh_head {
 public:
  using backend_type = cpu;
  static constexpr bool is_head = true;
  struct saved_type {
    linear<>::saved_type lin;
    tensor<cpu> y;  // tanh output, for backward
  };

  linear_tanh_head() = default;
  linear_tanh_head(int64_t in, int64_t out, uint64_t seed) : lin_(in, out, true, seed) {}
  int64_t in_dim() const { return lin_.in_features(); }
  int64_t out_dim() const { return lin_.out_features(); }

  output<saved_type, cpu> forward(const tensor<cpu>& x) {
    auto a = lin_.forward(x);
    tensor<cpu> y = std::move(a.y);
    for (int64_t i = 0; i < y.numel(); ++i) y[i] = std::tanh(y[i]);
    return {y, {std::move(a.saved), y}};
  }
  tensor<cpu> backward(const saved_type& s, const tensor<cpu>& dy) {
    tensor<cpu> da(dy.shape());
    for (int64_t i = 0; i < dy.numel(); ++i) da[i] = dy[i] * (1 - s.y[i] * s.y[i]);  // d tanh = 1 - y^2
    return lin_.backward(s.lin, da);
  }
  tensor<cpu> infer(const tensor<cpu>& x) const {
    tensor<cpu> y = lin_.infer(x);
    for (int64_t i = 0; i < y.numel(); ++i) y[i] = std::tanh(y[i]);
    return y;
  }
  void collect(param_list<cpu>& out, const std::string& prefix) { lin_.collect(out, join_name(prefix, "0")); }

 private:
  linear<> lin_;
};
static_assert(Head<linear_tanh_head>);

/// NT-Xent plus lambda * mean_i |z_i|^2 (keeps embeddings small): value and grad_z, as simclr reads.
struct nt_xent_with_norm_penalty {
  nt_xent base{0.5f};
  float lambda = 1e-3f;
  struct result {
    float value = 0;
    tensor<cpu> grad_z;
  };
  result operator()(const tensor<cpu>& z) const {
    auto r = base(z);
    const int64_t N = z.dim(0);
    double pen = 0;
    for (int64_t i = 0; i < z.numel(); ++i) {
      pen += double(z[i]) * z[i];
      r.grad_z[i] += 2 * lambda * z[i] / float(N);
    }
    return {float(r.value + lambda * pen / double(N)), std::move(r.grad_z)};
  }
};
static_assert(Loss<nt_xent_with_norm_penalty, tensor<cpu>>);

int main() {
  set_num_threads(1);
  // 64 random 8x8 "images"; two noisy views of each.
  rng g(1);
  tensor<cpu> base(shape{64, 1, 8, 8});
  for (int64_t i = 0; i < base.numel(); ++i) base[i] = g.normal();
  std::vector<tensor<cpu>> views(2, base);
  for (auto& v : views)
    for (int64_t i = 0; i < v.numel(); ++i) v[i] += 0.3f * g.normal();

  simclr<mlp_encoder<>, linear_tanh_head, nt_xent_with_norm_penalty> method(mlp_encoder<>(64, {32}, 2),
                                                                            linear_tanh_head(32, 16, 3));
  param_list<cpu> params;
  method.collect(params, "");
  adamw opt(params, {.lr = 1e-2f, .weight_decay = 0.0f});
  for (int step = 1; step <= 50; ++step) {
    for (auto& r : params) r.p->grad.zero();
    const float loss = method.train_step(views).loss;
    opt.step();
    method.after_step({step, 50, 0});
    if (step == 1 || step % 10 == 0) std::printf("step %2d  loss %.4f\n", step, loss);
  }
  std::printf("parameters: ");
  for (auto& r : params) std::printf("%s ", r.name.c_str());
  std::printf("\n");
  return 0;
}
