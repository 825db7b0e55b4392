#pragma once
// MSN (Assran et al. 2022, "Masked Siamese Networks for Label-Efficient Learning"): a ViT sees
// anchor views with a share of their patches dropped (only the kept tokens run, as in MAE's
// encoder) and learns to give them the same soft assignment to K learned prototypes as an EMA
// target network gives an unmasked view of the same image.
// views: view 0 is the target view (N, C, H, W), views 1.. the anchor views (the official code's
// one "rand" view plus its "focal" views: e.g. augment::dino_views' second global crop and its local
// crops). Per step:
//   target  t = teacher_head(teacher_encoder.infer(view 0))       (N, d)  no gradient; the head's
//             BNs use the batch's statistics (the official target network runs in train mode)
//   anchors per resolution group of views 1..: mask = random_token_mask(n, L, mask_ratio) (kept
//           floor(L (1 - ratio)) patches per image), f = pool(encoder.forward_tokens(x, mask))
//           ([CLS] by default), a = head(f over all V N anchor rows)                (V N, d)
//   L = msn_loss(a, t, prototypes)   cross-entropy to the sharpened (Sinkhorn-balanced) targets
//       + ME-MAX (losses/msn.hpp); the prototypes (K, d) are a parameter ("prototypes")
//   after_step: teacher = m teacher + (1 - m) student over encoder and head, m linear from
//               momentum_base to momentum_final over the planned steps.
// Defaults are the official ViT-S/16 config (msn_vits16.yaml): patch drop 0.15, 1024 prototypes,
// tau 0.1, sharpening T 0.25, ME-MAX weight 1, Sinkhorn-Knopp targets, EMA 0.996 rising linearly
// towards 1 over 1.25x the planned steps (so 0.9992 at the last one: momentum_final). The head is
// the official projector: projection_mlp {layers 3, hidden 2048, out 256, BN, GELU}
// (msn_options::projector). Deviations (docs/methods/msn.md): every image draws its own kept
// patches (the official code keeps one random set per batch); the target view is the first global
// crop of the method's views rather than a separately sized crop.
// Data-parallel (dist::data_parallel, host methods): set_replica makes each replica mask its rows
// of the global batch's draw; the Sinkhorn-Knopp targets and ME-MAX's mean prediction run over every
// replica's rows (the official code's all-reduces) through data_parallel's batch gather by default
// (set_sinkhorn_group: a communicator's all-reduce, dist::sync_sinkhorn_knopp; an empty group: each
// replica's own rows). The official code also synchronises the projector's BNs (SyncBatchNorm):
// dist::sync_batch_norm(head, comm) before composing, or on the whole method (for_each_batch_norm).
// The backend is the encoder's backend tag: msn<vit<cuda>, projection_mlp<cuda>> runs the same
// step on the GPU (under nvcc); masks are drawn on the host either way.
#include <algorithm>
#include <array>
#include <cmath>
#include <concepts>
#include <string>
#include <utility>
#include <vector>

#include "../backend/cpu/vit_ops.hpp"  // ops::add_range
#include "../encoders/vit.hpp"
#include "../heads/projection_mlp.hpp"
#include "../losses/msn.hpp"
#include "../nn/init.hpp"
#include "detail/method_parts.hpp"
#include "detail/replica_place.hpp"
#include "detail/sinkhorn_sync.hpp"
#if defined(__CUDACC__)
#include "../backend/cuda/vit_ops.cuh"
#endif

namespace ssl {

struct msn_options {
  float mask_ratio = 0.15f;        // share of each anchor view's patches dropped (ViT-S/16: 0.15)
  int64_t prototypes = 1024;       // K
  msn_loss_options loss{};         // tau 0.1, T 0.25, ME-MAX 1, entropy 0, Sinkhorn 3 iterations
  float momentum_base = 0.996f;    // target EMA momentum at step 0
  float momentum_final = 0.9992f;  // ... at the last planned step (official: 1 at 1.25x the steps)
  uint64_t seed = 0;               // the masks of step i are drawn from rng(seed).fork(i)

  /// The official projector for an encoder of width `in_dim`: Linear -> BN -> GELU, twice, then
  /// Linear to `out_dim` (hidden 2048, out 256 in msn_vits16.yaml).
  static projection_mlp_options projector(int64_t in_dim, int64_t hidden_dim = 2048, int64_t out_dim = 256) {
    return {.in_dim = in_dim, .hidden_dim = hidden_dim, .out_dim = out_dim, .layers = 3, .batch_norm = true,
            .activation = mlp_activation::gelu};
  }
};

template <class E = vit<>, class H = projection_mlp<typename E::backend_type>>
class msn {
  static_assert(Encoder<E>, "msn<E, H>: E must satisfy ssl::Encoder");
  static_assert(Head<H>, "msn<E, H>: H must satisfy ssl::Head (a Module with in_dim(), out_dim(), is_head)");
  static_assert(std::same_as<typename E::backend_type, typename H::backend_type>,
                "msn<E, H>: encoder and head must use the same backend tag");
  static_assert(requires(E e, const E ce, const tensor<typename E::backend_type>& x, const token_mask* m) {
    e.forward_tokens(x, m);
    ce.pool();
    E::pool_tokens(x, ce.pool());
    ce.patch_size();
  }, "msn<E, H>: E must be a ViT-like encoder with forward_tokens(x, token_mask) and pooled backward (e.g. ssl::vit)");

 public:
  using backend_type = typename E::backend_type;
  using B = backend_type;

  msn(E encoder, H head, const msn_options& o = {}, rng gen = rng(0, 0x4d534e))
      : encoder_(std::move(encoder)), head_(std::move(head)), teacher_encoder_(encoder_), teacher_head_(head_),
        opt_(o), loss_(o.loss), momentum_(o.momentum_base) {
    check<shape_error>(encoder_.feature_dim() == head_.in_dim(), "msn: the encoder gives features of size ",
                       encoder_.feature_dim(), " but the head expects in_dim ", head_.in_dim());
    check<value_error>(o.mask_ratio >= 0.0f && o.mask_ratio < 1.0f, "msn: expected a mask ratio in [0, 1), got ",
                       o.mask_ratio);
    check<value_error>(o.prototypes >= 1, "msn: expected at least 1 prototype, got ", o.prototypes);
    methods_detail::expect_momentum(o.momentum_base, "msn");
    methods_detail::expect_momentum(o.momentum_final, "msn");
    // The official init: U(-1/sqrt(d), 1/sqrt(d)) (the loss normalises the rows, so only directions matter).
    const int64_t d = head_.out_dim();
    tensor<cpu> p(shape{o.prototypes, d});
    const float bound = 1.0f / std::sqrt(float(d));
    init::uniform(p, gen, -bound, bound);
    prototypes_ = parameter<B>(shape{o.prototypes, d}, param_kind::weight);
    prototypes_.value = to_backend<B>(p);
  }

  /// The anchor masks of step `step` for resolution group `group`: `views` anchor views of this
  /// replica's `images` images, L patches each, view-major (sample v images + i). Sample (v, i) is
  /// sample v images W + first + i of the global batch's draw (W replicas, this one's first image
  /// `first`), so the replicas together mask as one process on the global batch.
  token_mask mask_for_step(int64_t images, int64_t views, int64_t L, int64_t step, int64_t group) const {
    check<value_error>(images >= 1 && views >= 1 && L >= 1, "msn::mask_for_step: expected images, views, patches >= 1, got ",
                       images, ", ", views, ", ", L);
    const rng gen = rng(opt_.seed, 0x4d534e01).fork(uint64_t(step)).fork(uint64_t(group));
    const int64_t global = images * replica_.world_size, first = replica_.first_row(images);
    token_mask out;
    out.batch = images * views;
    out.tokens = L;
    out.mask = tensor<cpu>(shape{images * views, L});
    for (int64_t v = 0; v < views; ++v) {
      const token_mask m = random_token_mask(images, L, opt_.mask_ratio, gen, v * global + first);
      out.kept = m.kept;
      out.keep.insert(out.keep.end(), m.keep.begin(), m.keep.end());
      out.restore.insert(out.restore.end(), m.restore.begin(), m.restore.end());
      std::copy_n(m.mask.data(), m.mask.numel(), out.mask.data() + v * images * L);
    }
    return out;
  }

  /// The target network's embeddings of a batch (N, d): no gradient, head BNs on batch statistics.
  tensor<B> target_embeddings(const tensor<B>& x) {
    return teacher_head_.forward(teacher_encoder_.infer(x)).y;  // the saved state is dropped at once
  }

  /// views: the target view, then V >= 1 anchor views; every view a (N, C, h, w) batch.
  step_stats train_step(const std::vector<tensor<B>>& views) {
    SSL_PROFILE_SCOPE("msn step");
    const int64_t Vall = int64_t(views.size());
    check<value_error>(Vall >= 2, "msn: expected the target view and at least 1 anchor view, got ", Vall,
                       " view(s)");
    const int64_t N = views[0].rank() == 4 ? views[0].dim(0) : 0, p = encoder_.patch_size();
    for (int64_t v = 0; v < Vall; ++v) {
      const tensor<B>& x = views[size_t(v)];
      check<shape_error>(x.rank() == 4 && x.dim(0) == N && N > 0 && x.dim(2) % p == 0 && x.dim(3) % p == 0 &&
                             x.dim(2) > 0 && x.dim(3) > 0,
                         "msn: view ", v, " should be a (", N, ", C, h, w) batch with h, w multiples of the patch size ",
                         p, ", got ", x.shape());
    }
    const int64_t V = Vall - 1, F = encoder_.feature_dim();

    // Target: (N, d), no gradient.
    const tensor<B> target = target_embeddings(views[0]);

    // Anchors: the encoder once per resolution group (first-appearance order), kept tokens only.
    std::vector<std::vector<int64_t>> groups;
    for (int64_t v = 1; v < Vall; ++v) {
      auto it = std::find_if(groups.begin(), groups.end(),
                             [&](const auto& g) { return views[size_t(g[0])].shape() == views[size_t(v)].shape(); });
      if (it == groups.end())
        groups.push_back({v});
      else
        it->push_back(v);
    }
    std::vector<typename E::saved_type> saved(groups.size());
    tensor<B> feats(shape{V * N, F});  // pooled anchor features, view-major
    for (size_t k = 0; k < groups.size(); ++k) {
      std::vector<const tensor<B>*> parts;
      for (int64_t v : groups[k]) parts.push_back(&views[size_t(v)]);
      tensor<B> cat;
      const tensor<B>& x = parts.size() == 1 ? *parts[0] : (cat = concat_batch(parts));
      const int64_t L = (x.dim(2) / p) * (x.dim(3) / p);
      const token_mask m = mask_for_step(N, int64_t(groups[k].size()), L, step_, int64_t(k));
      auto o = encoder_.forward_tokens(x, &m);
      o.saved.pool = encoder_.pool();
      const tensor<B> f = E::pool_tokens(o.y, encoder_.pool());  // (n N, F)
      saved[k] = std::move(o.saved);
      for (size_t j = 0; j < groups[k].size(); ++j)
        tensor<B>::copy_elements(f.data() + int64_t(j) * N * F, feats.data() + (groups[k][j] - 1) * N * F, N * F);
    }

    // Head on all V N anchor rows (its BNs see them together), the loss, and back.
    auto h = head_.forward(feats);
    auto r = loss_(h.y, target, prototypes_.value, batch_group());
    ops::add_range(prototypes_.grad, 0, r.grad_prototypes, 0, r.grad_prototypes.numel(), 1.0f);
    const tensor<B> dfeats = head_.backward(h.saved, r.grad_anchors);
    for (size_t k = 0; k < groups.size(); ++k) {
      const int64_t n = int64_t(groups[k].size());
      tensor<B> dg(shape{n * N, F});
      for (int64_t j = 0; j < n; ++j)
        tensor<B>::copy_elements(dfeats.data() + (groups[k][size_t(j)] - 1) * N * F, dg.data() + j * N * F, N * F);
      encoder_.backward(saved[k], dg);
      saved[k] = typename E::saved_type{};  // release the group's activations
    }

    // The values, read last (on the GPU the step is queued before the host waits).
    const float loss = host_loss(r.value);
    expect_finite_loss(loss, "msn");
    const tensor<cpu> terms = to_host(r.parts);
    last_terms_ = {terms[0], terms[1], terms[2]};
    ++step_;
    return {loss};
  }

  /// EMA of the target network, momentum linear from momentum_base to momentum_final.
  void after_step(const step_info& info) {
    step_ = info.step;
    const double t = std::clamp(info.progress(), 0.0, 1.0);
    momentum_ = float(double(opt_.momentum_base) + (double(opt_.momentum_final) - double(opt_.momentum_base)) * t);
    methods_detail::ema_module(teacher_encoder_, encoder_, momentum_);
    methods_detail::ema_module(teacher_head_, head_, momentum_);
  }

  void collect(param_list<B>& out, const std::string& prefix) {
    encoder_.collect(out, join_name(prefix, "encoder"));
    head_.collect(out, join_name(prefix, "head"));
    out.push_back({join_name(prefix, "prototypes"), &prototypes_});
  }
  /// The student head's BN statistics and the whole target network (weights and statistics).
  void collect_buffers(methods_detail::buffer_list<B>& out, const std::string& prefix) {
    methods_detail::module_buffers(encoder_, out, join_name(prefix, "encoder"));
    methods_detail::module_buffers(head_, out, join_name(prefix, "head"));
    methods_detail::teacher_buffers(teacher_encoder_, out, join_name(prefix, "teacher.encoder"));
    methods_detail::teacher_buffers(teacher_head_, out, join_name(prefix, "teacher.head"));
  }

  E& encoder() { return encoder_; }
  const E& encoder() const { return encoder_; }
  H& head() { return head_; }
  /// The EMA target network.
  E& teacher_encoder() { return teacher_encoder_; }
  const E& teacher_encoder() const { return teacher_encoder_; }
  H& teacher_head() { return teacher_head_; }
  /// The prototypes (K, d) (rows normalised inside the loss; MSN gives them no weight decay).
  parameter<B>& prototypes() { return prototypes_; }
  const parameter<B>& prototypes() const { return prototypes_; }
  const msn_options& options() const { return opt_; }
  const msn_loss& loss() const { return loss_; }
  /// The last step's cross-entropy, ME-MAX (0: the anchors use the prototypes evenly) and
  /// per-anchor entropy, unweighted.
  std::array<float, 3> last_terms() const { return last_terms_; }
  /// The momentum of the latest after_step (momentum_base before the first).
  float momentum() const { return momentum_; }
  int64_t step_count() const { return step_; }
  void set_step_count(int64_t s) { step_ = s; }

  /// Data-parallel replica `rank` of `world_size` (dist::data_parallel calls it): the anchor masks
  /// are this replica's images of the global batch's masks.
  void set_replica(int rank, int world_size) { replica_.set(rank, world_size); }
  /// Whose rows the Sinkhorn-Knopp targets and ME-MAX's mean prediction use under data_parallel:
  /// an explicit group (dist::sync_sinkhorn_knopp), or an empty one (each replica's own rows).
  void set_sinkhorn_group(sinkhorn_group g) { sync_.set_group(std::move(g), std::same_as<B, cpu>, "msn"); }
  /// Back to the default (data_parallel's batch gather).
  void set_sinkhorn_automatic() { sync_.set_automatic(); }
  /// Whether the targets and ME-MAX use every replica's rows.
  bool sinkhorn_synchronized() const { return sync_.synchronized(replica_.world_size); }
  /// dist::data_parallel's gather of every rank's rows (the default reductions; removed by its destructor).
  void set_batch_gather(methods_detail::sinkhorn_sync::gather_fn gather)
    requires std::same_as<B, cpu>
  {
    sync_.set_gather(std::move(gather));
  }
  /// Every BatchNorm of the student and the target network (dist::sync_batch_norm(method, comm)).
  template <class Fn>
  void for_each_batch_norm(Fn&& f) {
    if constexpr (HasBatchNorms<E>) {
      encoder_.for_each_batch_norm(f);
      teacher_encoder_.for_each_batch_norm(f);
    }
    if constexpr (HasBatchNorms<H>) {
      head_.for_each_batch_norm(f);
      teacher_head_.for_each_batch_norm(f);
    }
  }

 private:
  /// The loss's data-parallel reductions (host methods; null: this replica's rows).
  const sinkhorn_group* batch_group() const {
    if constexpr (std::same_as<B, cpu>)
      return sync_.group(replica_.world_size);
    else
      return nullptr;
  }

  E encoder_;
  H head_;
  E teacher_encoder_;
  H teacher_head_;
  msn_options opt_;
  msn_loss loss_;
  parameter<B> prototypes_;
  float momentum_;
  int64_t step_ = 0;
  std::array<float, 3> last_terms_{};
  methods_detail::replica_place replica_;
  methods_detail::sinkhorn_sync sync_;
};

}  // namespace ssl
