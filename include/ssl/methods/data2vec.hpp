#pragma once
// data2vec (Baevski et al. 2022, "data2vec: A General Framework for Self-supervised Learning in
// Speech, Vision and Language"), its vision model: a student ViT sees the image with block-masked
// patches replaced by a mask token and regresses, at the masked positions, the average of the top K
// blocks of an EMA teacher that sees the whole image. Targets are contextualised (they mix the
// whole image) rather than pixels (MAE) or hand-made features (MaskFeat). One view per image.
//   mask   = block_mask per image, about mask_ratio L patches in rectangles (BEiT's generator)
//   t      = data2vec_loss::targets(teacher.infer_block_outputs(x, K))   (N, 1 + L, D)
//            LN(1/K sum of the last K block outputs), no gradient
//   s      = student.forward_tokens(x, hide = mask)                       (N, 1 + L, D)
//   pred   = head(s[masked])   Linear(D, D) (regression_head; off: s[masked] itself)   (M, D)
//   L      = 1/sqrt(D) 1/M sum_m sum_d smooth_l1_beta(pred - t[masked])    (beta 2; M masked tokens)
//   after_step: teacher = m teacher + (1 - m) student, m linear from momentum_base (0.999) to
//               momentum_final (0.9998) over the planned steps (fairseq's ema_decay schedule).
// Defaults are fairseq's base_imagenet_d2v1 config: K = 6 of 12 blocks (here half the depth),
// layer_norm_targets, loss_beta 2, loss_scale 1/sqrt(D). Deviations (docs/methods/data2vec.md): the
// teacher is an EMA of the whole ViT (fairseq's ema_transformer_only shares the student's patch
// embedding); the mask token is the ViT's own (vit_options::mask_token, zero init; fairseq:
// trunc_normal 0.02); the ViT has absolute positions, not BEiT's relative bias; the regression
// head is on by default (fairseq's vision model builds final_proj but regresses the encoder output
// directly: regression_head = false does that).
// Data-parallel: every replica draws the whole global batch's masks (cheap, host) and divides by
// the global count of masked tokens over the replicas, so the averaged update equals one process
// on the global batch even though images hide different numbers of patches.
// The encoder is any ViT-like type with forward_tokens(x, token_mask*, patch_mask*) /
// backward_tokens / infer_block_outputs (ssl::vit built with vit_options::mask_token). The backend
// is the encoder's backend tag: data2vec<vit<cuda>> runs the same step on the GPU (under nvcc).
#include <algorithm>
#include <cmath>
#include <concepts>
#include <string>
#include <utility>
#include <vector>

#include "../encoders/vit.hpp"
#include "../losses/data2vec.hpp"
#include "../nn/linear.hpp"
#include "../pretext/block_mask.hpp"
#include "detail/method_parts.hpp"
#include "detail/replica_place.hpp"

namespace ssl {

struct data2vec_options {
  float mask_ratio = 0.4f;         // hidden share of the patches (BEiT / data2vec: 75 of 196, 0.38)
  block_mask_options blocks{};     // blocks of >= 4 patches (BEiT: 16 of 196), aspect (0.3, 3.3)
  int64_t top_k = -1;              // teacher blocks averaged; -1: half the depth (the paper: 6 of 12)
  data2vec_loss_options loss{};    // beta 2, scale 1/sqrt(D), LN of the average
  bool regression_head = true;     // Linear(D, D) on the masked tokens before the loss
  float momentum_base = 0.999f;    // teacher EMA momentum at step 0
  float momentum_final = 0.9998f;  // ... at the last planned step (linear in between)
  uint64_t seed = 0;
};

template <class E = vit<>>
class data2vec {
  static_assert(Encoder<E>, "data2vec<E>: E must satisfy ssl::Encoder");
  static_assert(requires(E e, const tensor<typename E::backend_type>& x, const patch_mask* h) {
    e.forward_tokens(x, nullptr, h);
    e.infer_block_outputs(x, int64_t(1));
    e.has_mask_token();
    e.depth();
    e.patch_size();
  }, "data2vec<E>: E must be a ViT-like encoder with forward_tokens(x, mask, hide) / backward_tokens / "
     "infer_block_outputs (e.g. ssl::vit)");

 public:
  using backend_type = typename E::backend_type;
  using B = backend_type;

  data2vec(E encoder, const data2vec_options& o = {}, rng gen = rng(0, 0x44325643))
      : encoder_(std::move(encoder)), teacher_(encoder_), opt_(o), loss_(o.loss),
        target_norm_(encoder_.feature_dim(), o.loss.eps), momentum_(o.momentum_base) {
    check<value_error>(encoder_.has_mask_token(),
                       "data2vec: the encoder needs a mask token (build the ViT with vit_options::mask_token = true)");
    check<value_error>(o.mask_ratio > 0.0f && o.mask_ratio < 1.0f, "data2vec: expected a mask ratio in (0, 1), got ",
                       o.mask_ratio);
    top_k_ = o.top_k == -1 ? std::max<int64_t>(1, encoder_.depth() / 2) : o.top_k;
    check<value_error>(top_k_ >= 1 && top_k_ <= encoder_.depth(), "data2vec: expected 1 <= top_k <= depth ",
                       encoder_.depth(), " (or -1: half the depth), got ", o.top_k);
    pretext_detail::check_block_options(o.blocks);
    methods_detail::expect_momentum(o.momentum_base, "data2vec");
    methods_detail::expect_momentum(o.momentum_final, "data2vec");
    const int64_t D = encoder_.feature_dim();
    if (o.regression_head) head_ = linear<B>(D, D, true, gen.fork(0));
  }

  /// The masks of training step `step` for this replica's n images of a gh x gw grid (rows
  /// [first, first + n) of the global batch's draw). `global_hidden` (optional) receives the number
  /// of hidden patches over the whole global batch (all replicas).
  patch_mask masks_for_step(int64_t n, int64_t gh, int64_t gw, int64_t step, int64_t* global_hidden = nullptr) const {
    const int64_t L = gh * gw, first = replica_.first_row(n), rows = n * replica_.world_size;
    check<value_error>(n >= 1 && L >= 2, "data2vec: expected at least 1 image of at least 2 patches, got ", n,
                       " of ", gh, " x ", gw);
    const int64_t target = std::clamp<int64_t>(int64_t(std::lround(double(opt_.mask_ratio) * double(L))), 1, L - 1);
    const rng base = rng(opt_.seed, 0x44325601).fork(uint64_t(step));
    patch_mask pm{.batch = n, .tokens = L, .hidden = std::vector<uint8_t>(size_t(n * L), 0)};
    int64_t total = 0;
    for (int64_t r = 0; r < rows; ++r) {
      rng g = base.fork(uint64_t(r));
      const std::vector<uint8_t> m = block_mask(gh, gw, target, g, opt_.blocks);
      for (uint8_t h : m) total += h != 0;
      if (r >= first && r < first + n) std::copy(m.begin(), m.end(), pm.hidden.begin() + (r - first) * L);
    }
    if (global_hidden) *global_hidden = total;
    return pm;
  }

  /// The regression targets of a batch: LN(mean of the teacher's last K block outputs), (N, 1 + L, D).
  tensor<B> targets(const tensor<B>& x) const {
    return loss_.targets(teacher_.infer_block_outputs(x, top_k_), target_norm_);
  }

  /// views: exactly one (N, C, H, W) batch.
  step_stats train_step(const std::vector<tensor<B>>& views) {
    SSL_PROFILE_SCOPE("data2vec step");
    check<value_error>(views.size() == 1, "data2vec: expected 1 view per image, got ", views.size());
    const tensor<B>& x = views[0];
    const int64_t p = encoder_.patch_size();
    check<shape_error>(x.rank() == 4 && x.dim(2) % p == 0 && x.dim(3) % p == 0 && x.dim(2) > 0 && x.dim(3) > 0,
                       "data2vec: expected images (N, C, H, W) with H, W multiples of the patch size ", p, ", got ",
                       x.shape());
    const int64_t N = x.dim(0), gh = x.dim(2) / p, gw = x.dim(3) / p, T = 1 + gh * gw;
    int64_t global_hidden = 0;
    const patch_mask pm = masks_for_step(N, gh, gw, step_++, &global_hidden);
    const std::vector<int32_t> idx = masked_rows(pm);
    check<value_error>(!idx.empty() && global_hidden > 0, "data2vec: the masks hid no patch of this batch");

    const tensor<B> target = gather(targets(x), idx);  // (M, D)
    auto s = encoder_.forward_tokens(x, nullptr, &pm);
    const tensor<B> z = gather(s.y, idx);  // (M, D)
    const double normaliser = double(global_hidden) / double(replica_.world_size);
    tensor<B> dz;
    decltype(loss_(z, target)) r;
    if (opt_.regression_head) {
      auto h = head_.forward(z);
      r = loss_(h.y, target, normaliser);
      dz = head_.backward(h.saved, r.grad_pred);
    } else {
      r = loss_(z, target, normaliser);
      dz = std::move(r.grad_pred);
    }
    encoder_.backward_tokens(s.saved, scatter(dz, idx, N, T));
    const float loss = host_loss(r.value);  // read last: on the GPU the step is queued before the host waits
    expect_finite_loss(loss, "data2vec");
    return {loss};
  }

  /// EMA of the teacher, momentum linear from momentum_base to momentum_final.
  void after_step(const step_info& info) {
    step_ = info.step;
    const double t = std::clamp(info.progress(), 0.0, 1.0);
    momentum_ = float(double(opt_.momentum_base) + (double(opt_.momentum_final) - double(opt_.momentum_base)) * t);
    methods_detail::ema_module(teacher_, encoder_, momentum_);
  }

  void collect(param_list<B>& out, const std::string& prefix) {
    encoder_.collect(out, join_name(prefix, "encoder"));
    if (opt_.regression_head) head_.collect(out, join_name(prefix, "head"));
  }
  /// The teacher's weights (checkpointed, not optimised).
  void collect_buffers(methods_detail::buffer_list<B>& out, const std::string& prefix) {
    methods_detail::teacher_buffers(teacher_, out, join_name(prefix, "teacher"));
  }

  E& encoder() { return encoder_; }
  const E& encoder() const { return encoder_; }
  E& teacher() { return teacher_; }
  const E& teacher() const { return teacher_; }
  /// The regression head (only with data2vec_options::regression_head).
  linear<B>& head() {
    check<value_error>(opt_.regression_head, "data2vec::head: built without a regression head");
    return head_;
  }
  const data2vec_options& options() const { return opt_; }
  const data2vec_loss& loss() const { return loss_; }
  int64_t top_k() const { return top_k_; }
  /// The momentum of the latest after_step (momentum_base before the first).
  float momentum() const { return momentum_; }
  int64_t step_count() const { return step_; }
  void set_step_count(int64_t s) { step_ = s; }
  /// Data-parallel replica `rank` of `world_size` (dist::data_parallel calls it): the masks are this
  /// replica's rows of the global batch's masks, the loss divided by the global masked count.
  void set_replica(int rank, int world_size) { replica_.set(rank, world_size); }

 private:
  using Tn = tensor<B>;
  /// Rows of the (N, T, D) token tensor viewed as (N T, D) holding a hidden patch: n T + 1 + l,
  /// sample by sample, patches in raster order.
  static std::vector<int32_t> masked_rows(const patch_mask& pm) {
    std::vector<int32_t> idx;
    const int64_t T = 1 + pm.tokens;
    for (int64_t n = 0; n < pm.batch; ++n)
      for (int64_t l = 0; l < pm.tokens; ++l)
        if (pm.hidden[size_t(n * pm.tokens + l)]) idx.push_back(int32_t(n * T + 1 + l));
    return idx;
  }
  /// tokens (N, T, D) -> (M, D): the rows idx.
  static Tn gather(Tn tokens, const std::vector<int32_t>& idx) {
    const int64_t NT = tokens.dim(0) * tokens.dim(1), D = tokens.dim(2), M = int64_t(idx.size());
    tokens.reshape(shape{1, NT, D});  // one sequence of N T tokens
    Tn out = ops::gather_tokens(tokens, idx, M);
    out.reshape(shape{M, D});
    return out;
  }
  /// Adjoint of gather: g (M, D) -> (N, T, D), zeros at the rows not gathered.
  static Tn scatter(Tn g, const std::vector<int32_t>& idx, int64_t N, int64_t T) {
    const int64_t M = g.dim(0), D = g.dim(1);
    g.reshape(shape{1, M, D});
    Tn out = ops::scatter_tokens(g, idx, N * T);
    out.reshape(shape{N, T, D});
    return out;
  }

  E encoder_;
  E teacher_;
  data2vec_options opt_;
  data2vec_loss loss_;
  layer_norm<B> target_norm_;  // weight 1, bias 0, never trained: the targets' LN without affine
  linear<B> head_;
  int64_t top_k_ = 1;
  float momentum_;
  int64_t step_ = 0;
  methods_detail::replica_place replica_;
};

}  // namespace ssl
