// Swapping parts: a user's own head and loss plugged into ssl::simclr, and a user's own
// two-view loss making a new non-contrastive method out of ssl::joint_embedding.
//
// A method is a class template over its parts; any type that satisfies the part's concept fits:
//   * Head:  a Module (forward / backward / infer / collect) with in_dim(), out_dim() and
//            `static constexpr bool is_head = true`.
//   * Loss:  const-callable on the method's inputs, returning a struct with `value` and the
//            gradient(s) the method reads (simclr reads `grad_z`).
// Here: `linear_tanh_head` (y = tanh(x W^T + b)) and `nt_xent_with_norm_penalty`
// (NT-Xent + lambda mean |z_i|^2), trained for a few steps on random data; then
// `invariance_variance` (VICReg without its covariance term), first checked against finite
// differences with the shipped ssl::testing::check_function_gradients, then trained as
// joint_embedding<mlp_encoder<>, projection_mlp<>, invariance_variance>. A part that does not
// fit fails with one readable static_assert, e.g. simclr<mlp_encoder<>, ssl::linear<>>:
//   "simclr<E, H, L>: H must satisfy ssl::Head (a Module with in_dim(), out_dim(), is_head)".
#include <cmath>
#include <cstdio>
#include <ssl/encoders/mlp.hpp>
#include <ssl/heads/projection_mlp.hpp>
#include <ssl/methods/joint_embedding.hpp>
#include <ssl/methods/simclr.hpp>
#include <ssl/nn/linear.hpp>
#include <ssl/optim/adamw.hpp>
#include <ssl/testing/gradient_check.hpp>

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

/// A two-view loss for joint_embedding: x, y (N, D) embeddings of the two views.
///   L = 1/(N D) sum (x - y)^2  +  sum over x and y of 1/D sum_d relu(1 - s_d),
///   s_d = sqrt(var_d + eps), var_d the biased variance of feature d over the batch.
/// Gradients: d inv/dx = 2 (x - y)/(N D) = -d inv/dy;  d/dx_nd of -s_d/D (where s_d < 1) is
/// -(x_nd - mean_d) / (N D s_d). Returns value, grad_x, grad_y (joint_embedding reads either naming).
struct invariance_variance {
  float eps = 1e-4f;
  struct result {
    float value = 0;
    tensor<cpu> grad_x, grad_y;
  };
  result operator()(const tensor<cpu>& x, const tensor<cpu>& y) const {
    const int64_t N = x.dim(0), D = x.dim(1);
    result r{0, tensor<cpu>(x.shape()), tensor<cpu>(x.shape())};
    double loss = 0;
    for (int64_t i = 0; i < N * D; ++i) {
      const double d = double(x[i]) - y[i];
      loss += d * d / double(N * D);
      r.grad_x[i] = float(2 * d / double(N * D));
      r.grad_y[i] = -r.grad_x[i];
    }
    for (auto [z, g] : {std::pair{&x, &r.grad_x}, std::pair{&y, &r.grad_y}})
      for (int64_t d = 0; d < D; ++d) {
        double mean = 0, var = 0;
        for (int64_t n = 0; n < N; ++n) mean += (*z)[n * D + d] / double(N);
        for (int64_t n = 0; n < N; ++n) var += ((*z)[n * D + d] - mean) * ((*z)[n * D + d] - mean) / double(N);
        const double s = std::sqrt(var + eps);
        if (s >= 1) continue;
        loss += (1 - s) / double(D);
        for (int64_t n = 0; n < N; ++n) (*g)[n * D + d] -= float(((*z)[n * D + d] - mean) / (double(N * D) * s));
      }
    r.value = float(loss);
    return r;
  }
};
static_assert(Loss<invariance_variance, tensor<cpu>, tensor<cpu>>);

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

  // The user's two-view loss: its gradients against central differences first ...
  const invariance_variance loss;
  std::vector<tensor<cpu>> embeddings(2, tensor<cpu>(shape{16, 8}));
  for (auto& e : embeddings)
    for (int64_t i = 0; i < e.numel(); ++i) e[i] = 0.3f * g.normal();  // std 0.3 < 1: the hinge is active
  const auto r = loss(embeddings[0], embeddings[1]);
  const auto check = testing::check_function_gradients(
      [&](std::vector<tensor<cpu>>& in) { return double(loss(in[0], in[1]).value); }, embeddings, {r.grad_x, r.grad_y},
      {.eps = 1e-3});
  std::printf("invariance_variance gradient check: %s\n", check.report().c_str());
  if (!check.ok()) return 1;
  // ... then a new method: encoder + 3-layer projector + that loss, one forward per view.
  joint_embedding<mlp_encoder<>, projection_mlp<>, invariance_variance> ours(
      mlp_encoder<>(64, {32}, 2), projection_mlp<>({.in_dim = 32, .hidden_dim = 32, .out_dim = 32, .layers = 3}, rng(4)));
  param_list<cpu> ours_params;
  ours.collect(ours_params, "");
  adamw ours_opt(ours_params, {.lr = 1e-2f, .weight_decay = 0.0f});
  for (int step = 1; step <= 50; ++step) {
    for (auto& p : ours_params) p.p->grad.zero();
    const float l = ours.train_step(views).loss;
    ours_opt.step();
    if (step == 1 || step % 10 == 0) std::printf("invariance_variance step %2d  loss %.4f\n", step, l);
  }
  return 0;
}
