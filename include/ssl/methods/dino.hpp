#pragma once
// DINO (Caron et al. 2021, "Emerging Properties in Self-Supervised Vision Transformers"),
// with DINOv2's additions (Oquab et al. 2023) as options: the KoLeo regulariser, iBOT's
// masked-patch loss and Sinkhorn-Knopp teacher targets (dino_options::dinov2()).
//
// Student = encoder + dino_head (trained); teacher = an EMA copy of both (never trained).
// views: the first G = global_views (default 2) are global crops of one size, the rest local
// crops (possibly of another size). Per step, with B images:
//   student: the backbone runs once per resolution group (views of one shape concatenated),
//            the head once on all V B backbone features               s (V, B, K)
//   teacher: backbone + head on the G global crops only                t (G, B, K), no gradient
//   L = dino(s, t): cross-entropy over every (teacher g, student v != g) pair  (losses/dino.hpp)
//     + koleo_weight * sum_g koleo(student backbone features of global crop g)   (DINOv2)
//     + ibot_weight * ibot_patch(s_p, t_p)                                        (iBOT / DINOv2)
// Teacher targets: t = softmax((teacher - c) / tau_t) with the center c (centering::center, DINO),
// or sinkhorn_knopp(teacher, tau_t) over all G B teacher rows (centering::sinkhorn_knopp, DINOv2;
// no center then).
// iBOT (ibot_weight > 0; needs a token encoder with a mask token: vit with vit_options::mask_token):
// each step draws DINOv2's block masks (pretext/block_mask.hpp) for the G B global-crop images from
// rng(seed).fork(step). The student's global crops run with their hidden patches replaced by the
// mask token; the teacher's run unmasked. Their [CLS] tokens are the global features (as DINO), and
// the M hidden patches' output tokens go through the same head (DINOv2's shared head), student
// s_p (M, K) against teacher t_p (M, K), targets made as above with a separate patch center.
// Local crops run without masks (in their own resolution groups).
// after_step (after the optimizer step), in this order:
//   center c <- m_c c + (1 - m_c) mean(t)          (the teacher outputs of the step just taken;
//                                                    iBOT: the patch center likewise; centering only)
//   teacher <- m teacher + (1 - m) student,  m = 1 - (1 - m0)(cos(pi i / I) + 1) / 2,  i = step - 1
// Teacher temperature of step i: linear from teacher_temperature_start to teacher_temperature over
// the first teacher_warmup_steps steps, then constant (DINO: 0.04 -> 0.07 over 30 epochs).
// Freezing the last layer: while step < freeze_last_layer_steps, the head's last layer gets zero
// gradients and is marked frozen (the optimizer skips it), as DINO's cancel_gradients_last_layer.
// (Heads without zero_last_layer_grad / set_last_layer_frozen are never frozen.)
//
// Teacher mode: a ViT teacher runs `infer` (no saved state). An encoder with batch norms (e.g.
// convnet_s) runs `forward` in train mode with its saved state dropped at once, so its BN uses the
// statistics of the global-crop batch, as the official code's teacher (in train mode) does; its
// running statistics follow its own batches. teacher_mode::infer / ::train overrides the choice.
//
// Collapse monitoring: last_dino_loss() near collapse_reference() = ln K means uniform outputs
// (eval::dino_loss_collapse).
#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../eval/collapse_monitor.hpp"
#include "../heads/dino_head.hpp"
#include "../losses/dino.hpp"
#include "../losses/ibot_patch.hpp"
#include "../losses/koleo.hpp"
#include "../losses/sinkhorn_knopp.hpp"
#include "../pretext/block_mask.hpp"
#include "../backend/cpu/vit_ops.hpp"  // ops::add_range
#include "../nn/batch_norm.hpp"
#include "detail/method_parts.hpp"
#include "detail/sinkhorn_sync.hpp"
#if defined(__CUDACC__)
#include "../backend/cuda/vit_ops.cuh"
#endif

namespace ssl {

enum class teacher_mode { automatic, infer, train };
/// How the teacher's logits become targets: DINO's centering + sharpening, or DINOv2's Sinkhorn-Knopp.
enum class dino_centering { center, sinkhorn_knopp };

/// An encoder the iBOT loss can use: all output tokens ([CLS] first) with hidden patches replaced
/// by a mask token (forward_tokens(x, nullptr, &patch_mask) / backward_tokens), e.g. vit.
template <class E>
concept MaskedTokenEncoder = requires(E& e, const E& ce, const tensor<typename E::backend_type>& x, const patch_mask& m,
                                      const typename E::saved_type& s) {
  e.forward_tokens(x, nullptr, &m);
  { e.backward_tokens(s, x) } -> std::same_as<tensor<typename E::backend_type>>;
  ce.infer_tokens(x);
  { ce.patch_size() } -> std::convertible_to<int64_t>;
  { ce.has_mask_token() } -> std::convertible_to<bool>;
};

struct dino_options {
  int global_views = 2;
  float student_temperature = 0.1f;
  float teacher_temperature_start = 0.04f;  // warm-up start
  float teacher_temperature = 0.07f;        // after the warm-up
  int64_t teacher_warmup_steps = 0;         // 0: teacher_temperature from the start
  float center_momentum = 0.9f;
  float momentum_base = 0.996f;  // EMA momentum at step 0
  bool cosine_momentum = true;   // raise it to 1 along a cosine over the planned steps
  int64_t freeze_last_layer_steps = 0;
  float koleo_weight = 0.0f;  // DINOv2: 0.1
  teacher_mode teacher = teacher_mode::automatic;
  dino_centering centering = dino_centering::center;  // DINOv2: sinkhorn_knopp
  int sinkhorn_iterations = 3;
  float ibot_weight = 0.0f;         // DINOv2: 1.0 (needs a MaskedTokenEncoder with its mask token)
  ibot_mask_options ibot_masks{};   // DINOv2: half the images, 10-50 % of their patches, in blocks
  uint64_t seed = 0;                // the masks of step i are drawn from rng(seed).fork(i)

  /// WORKLOADS.md W3: teacher temperature 0.04 constant, no freezing, no KoLeo.
  static dino_options w3() { return {.teacher_temperature_start = 0.04f, .teacher_temperature = 0.04f}; }
  /// DINOv2's additions on top of DINO: KoLeo 0.1, iBOT 1.0 through the shared head, Sinkhorn-Knopp
  /// targets (3 iterations), teacher temperature 0.04 -> 0.07 over `teacher_warmup_steps`.
  static dino_options dinov2(int64_t teacher_warmup_steps = 0) {
    return {.teacher_warmup_steps = teacher_warmup_steps, .koleo_weight = 0.1f,
            .centering = dino_centering::sinkhorn_knopp, .ibot_weight = 1.0f};
  }
};

template <class E, class H = dino_head<typename E::backend_type>>
class dino_method {
  static_assert(Encoder<E>, "dino_method<E, H>: E must satisfy ssl::Encoder (a Module with feature_dim())");
  static_assert(Head<H>, "dino_method<E, H>: H must satisfy ssl::Head (a Module with in_dim(), out_dim(), is_head)");
  static_assert(std::same_as<typename E::backend_type, typename H::backend_type>,
                "dino_method<E, H>: encoder and head must use the same backend tag");

 public:
  using backend_type = typename E::backend_type;

  dino_method(E encoder, H head, const dino_options& o = {})
      : encoder_(std::move(encoder)), head_(std::move(head)), opt_(o),
        loss_(head_.out_dim(), o.student_temperature, o.teacher_temperature_start, o.center_momentum),
        ibot_(head_.out_dim(), o.student_temperature, o.teacher_temperature_start, o.center_momentum) {
    check<shape_error>(encoder_.feature_dim() == head_.in_dim(), "dino: the encoder gives features of size ",
                       encoder_.feature_dim(), " but the head expects in_dim ", head_.in_dim());
    check<value_error>(o.global_views >= 1, "dino: expected at least 1 global view, got ", o.global_views);
    check<value_error>(o.teacher_warmup_steps >= 0 && o.freeze_last_layer_steps >= 0 && o.koleo_weight >= 0.0f,
                       "dino: expected non-negative warm-up steps, freeze steps and KoLeo weight, got ",
                       o.teacher_warmup_steps, ", ", o.freeze_last_layer_steps, ", ", o.koleo_weight);
    check<value_error>(o.teacher_temperature > 0.0f && o.teacher_temperature_start > 0.0f,
                       "dino: teacher temperatures must be > 0, got ", o.teacher_temperature_start, " -> ",
                       o.teacher_temperature);
    methods_detail::expect_momentum(o.momentum_base, "dino");
    check<value_error>(o.sinkhorn_iterations >= 1 && o.ibot_weight >= 0.0f,
                       "dino: expected sinkhorn_iterations >= 1 and ibot_weight >= 0, got ", o.sinkhorn_iterations,
                       ", ", o.ibot_weight);
    if (o.ibot_weight > 0.0f) {
      if constexpr (MaskedTokenEncoder<E>) {
        check<value_error>(encoder_.has_mask_token(),
                           "dino: iBOT (ibot_weight > 0) needs the encoder's mask token; build the ViT with "
                           "vit_options::mask_token = true");
        check<value_error>(encoder_.feature_dim() == head_.in_dim(), "dino: iBOT sends patch tokens through the head");
      } else {
        throw value_error(
            "dino: iBOT (ibot_weight > 0) needs an encoder with masked token outputs (ssl::MaskedTokenEncoder, "
            "e.g. vit with vit_options::mask_token); this encoder gives pooled features only");
      }
      (void)ibot_masks(1, 2, 2, o.ibot_masks, rng(0));  // validates the mask options now
    }
    teacher_encoder_.emplace(encoder_);
    teacher_head_.emplace(head_);
    center_ = to_backend<backend_type>(loss_.center());
    patch_center_ = to_backend<backend_type>(ibot_.center());
    momentum_ = o.momentum_base;
  }

  /// Teacher temperature used at step `step` (0-based).
  float teacher_temperature_at(int64_t step) const {
    if (step >= opt_.teacher_warmup_steps) return opt_.teacher_temperature;
    const double f = double(step) / double(opt_.teacher_warmup_steps);
    return float(opt_.teacher_temperature_start + (opt_.teacher_temperature - opt_.teacher_temperature_start) * f);
  }

  /// views: G global crops (one shape), then local crops; every view a (B, C, h, w) batch.
  step_stats train_step(const std::vector<tensor<backend_type>>& views) {
    const int64_t V = int64_t(views.size()), G = opt_.global_views;
    check<value_error>(V >= 2 && V >= G, "dino: expected at least 2 views with the ", G,
                       " global crops first, got ", V, " view(s)");
    const int64_t B = views[0].dim(0);
    for (int64_t v = 0; v < V; ++v)
      check<shape_error>(views[size_t(v)].rank() == 4 && views[size_t(v)].dim(0) == B, "dino: view ", v,
                         " should be a (", B, ", C, h, w) batch like view 0, got ", views[size_t(v)].shape());
    for (int64_t g = 1; g < G; ++g)
      check<shape_error>(views[size_t(g)].shape() == views[0].shape(), "dino: global crop ", g, " has shape ",
                         views[size_t(g)].shape(), " but global crop 0 has shape ", views[0].shape());
    // constant false without a mask-token encoder (the constructor rejects iBOT there): no dead branch
    const bool ibot = MaskedTokenEncoder<E> && opt_.ibot_weight > 0.0f;
    const int64_t K = head_.out_dim(), F = encoder_.feature_dim();

    // Teacher: backbone + head on the G global crops (G B, C, H, W), no gradient. With iBOT the head
    // also runs on the teacher's tokens of the patches hidden from the student.
    std::vector<const tensor<backend_type>*> globals;
    for (int64_t g = 0; g < G; ++g) globals.push_back(&views[size_t(g)]);
    const tensor<backend_type> xg = G == 1 ? views[0] : concat_batch(globals);
    masked_rows mr;
    if (ibot) {
      mr = draw_masks(xg);
      tensor<backend_type> out = teacher_head_->infer(teacher_masked_rows(xg, mr));  // (G B + M, K)
      teacher_out_ = methods_detail::rows(out, 0, G * B);
      teacher_patch_out_ = methods_detail::rows(out, G * B, G * B + mr.hidden);
    } else {
      teacher_out_ = teacher_head_->infer(teacher_features(xg));  // (G B, K)
    }
    teacher_out_.reshape(shape{G, B, K});

    // Student backbone: once per resolution group (first-appearance order of the view shapes);
    // the group of exactly the global crops reuses their concatenation. With iBOT the global
    // crops always form group 0 and run masked.
    std::vector<std::vector<int64_t>> groups;
    for (int64_t v = 0; v < V; ++v) {
      if (ibot && v < G) {
        if (groups.empty()) groups.emplace_back();
        groups[0].push_back(v);
        continue;
      }
      auto it = std::find_if(groups.begin() + (ibot ? 1 : 0), groups.end(),
                             [&](const auto& gr) { return views[size_t(gr[0])].shape() == views[size_t(v)].shape(); });
      if (it == groups.end())
        groups.push_back({v});
      else
        it->push_back(v);
    }
    std::vector<typename E::saved_type> saved(groups.size());
    tensor<backend_type> feats(shape{V * B, F});  // backbone features in view order
    tensor<backend_type> patch_feats;             // iBOT: (M, F) student tokens of the hidden patches
    for (size_t k = 0; k < groups.size(); ++k) {
      if (ibot && k == 0) {  // the G B global crops: [CLS] rows are feats[0, G B), then the hidden patches
        tensor<backend_type> sel = student_masked_rows(xg, mr, saved[0]);  // (G B + M, F)
        tensor<backend_type>::copy_elements(sel.data(), feats.data(), G * B * F);
        patch_feats = methods_detail::rows(sel, G * B, G * B + mr.hidden);
        continue;
      }
      std::vector<const tensor<backend_type>*> parts;
      for (int64_t v : groups[k]) parts.push_back(&views[size_t(v)]);
      const bool is_global = int64_t(groups[k].size()) == G && groups[k].front() == 0 && groups[k].back() == G - 1;
      tensor<backend_type> cat;
      const tensor<backend_type>* x = &xg;
      if (!is_global) x = parts.size() == 1 ? parts[0] : &(cat = concat_batch(parts));
      auto o = encoder_.forward(*x);
      saved[k] = std::move(o.saved);
      for (size_t j = 0; j < groups[k].size(); ++j)
        tensor<backend_type>::copy_elements(o.y.data() + int64_t(j) * B * F, feats.data() + groups[k][j] * B * F,
                                            B * F);
    }

    // Head on all V B features (and the M hidden patches), losses against the teacher's targets.
    const float tau_t = teacher_temperature_at(step_);
    loss_.set_teacher_temperature(tau_t);
    ibot_.set_teacher_temperature(tau_t);
    auto s = head_.forward(ibot ? concat_batch(std::vector<const tensor<backend_type>*>{&feats, &patch_feats}) : feats);
    tensor<backend_type> student = ibot ? methods_detail::rows(s.y, 0, V * B) : std::move(s.y);
    student.reshape(shape{V, B, K});
    auto r = loss_.with_targets(student, teacher_targets(teacher_out_, center_, tau_t));
    r.grad_student.reshape(shape{V * B, K});
    using ibot_value = decltype(ibot_.with_targets(teacher_patch_out_, teacher_patch_out_, mr.counts).value);
    std::optional<ibot_value> ibot_value_of_step;
    tensor<backend_type> dfeats, dpatch;
    if (ibot) {
      const tensor<backend_type> student_patch = methods_detail::rows(s.y, V * B, V * B + mr.hidden);
      auto rp = ibot_.with_targets(student_patch, teacher_targets(teacher_patch_out_, patch_center_, tau_t), mr.counts);
      methods_detail::scale_in_place(rp.grad_student, opt_.ibot_weight);
      const tensor<backend_type> dhead_in = head_.backward(
          s.saved, concat_batch(std::vector<const tensor<backend_type>*>{&r.grad_student, &rp.grad_student}));
      dfeats = methods_detail::rows(dhead_in, 0, V * B);
      dpatch = methods_detail::rows(dhead_in, V * B, V * B + mr.hidden);
      ibot_value_of_step.emplace(std::move(rp.value));
    } else {
      dfeats = head_.backward(s.saved, r.grad_student);
    }

    // DINOv2's KoLeo on each global crop's backbone features: dfeats[g] += w dKoLeo/dfeats[g].
    using koleo_value = decltype(koleo{}(feats).value);
    std::vector<koleo_value> koleo_values;
    if (opt_.koleo_weight > 0.0f) {
      check<shape_error>(B >= 2, "dino: KoLeo needs at least 2 images per batch, got ", B);
      for (int64_t g = 0; g < G; ++g) {
        const tensor<backend_type> fg = methods_detail::rows(feats, g * B, (g + 1) * B);
        auto kr = koleo{}(fg);
        ops::add_range(dfeats, g * B * F, kr.grad_x, 0, B * F, opt_.koleo_weight);
        koleo_values.push_back(std::move(kr.value));
      }
    }

    // Backbone backward per group.
    for (size_t k = 0; k < groups.size(); ++k) {
      if (ibot && k == 0) {
        student_masked_backward(std::move(saved[0]), mr, methods_detail::rows(dfeats, 0, G * B), dpatch);
        continue;
      }
      const int64_t n = int64_t(groups[k].size());
      tensor<backend_type> dg(shape{n * B, F});
      for (int64_t j = 0; j < n; ++j)
        tensor<backend_type>::copy_elements(dfeats.data() + groups[k][size_t(j)] * B * F, dg.data() + j * B * F,
                                            B * F);
      encoder_.backward(std::move(saved[k]), dg);  // the encoder may release its activations as it goes
    }

    // The loss values, read last (on the GPU the whole step is queued before the host waits).
    last_dino_loss_ = host_loss(r.value);
    expect_finite_loss(last_dino_loss_, "dino");
    float total = last_dino_loss_;
    for (const auto& kv : koleo_values) total += opt_.koleo_weight * host_loss(kv);
    if (!koleo_values.empty()) expect_finite_loss(total, "dino (with KoLeo)");
    if (ibot_value_of_step) {
      last_ibot_loss_ = host_loss(*ibot_value_of_step);
      total += opt_.ibot_weight * last_ibot_loss_;
      expect_finite_loss(total, "dino (with iBOT)");
    }
    last_hidden_patches_ = mr.hidden;

    if constexpr (requires(H& h) { h.zero_last_layer_grad(); h.set_last_layer_frozen(true); }) {
      const bool freeze = step_ < opt_.freeze_last_layer_steps;
      if (freeze) head_.zero_last_layer_grad();
      head_.set_last_layer_frozen(freeze);
    }
    return {total};
  }

  /// After the optimizer step: center update(s) (centering only), teacher EMA, step counter.
  void after_step(const step_info& info) {
    // (a default tensor has rank 0: no teacher rows since the last step, or no hidden patches)
    const auto has_rows = [](const tensor<backend_type>& t) { return t.rank() >= 2 && t.numel() > 0; };
    if (has_rows(teacher_out_) && opt_.centering == dino_centering::center)
      losses_detail::update_center(center_, teacher_out_, opt_.center_momentum);
    if (has_rows(teacher_patch_out_) && opt_.centering == dino_centering::center)
      losses_detail::update_center(patch_center_, teacher_patch_out_, opt_.center_momentum);
    teacher_out_ = tensor<backend_type>();
    teacher_patch_out_ = tensor<backend_type>();
    momentum_ = opt_.cosine_momentum
                    ? methods_detail::cosine_to_one(opt_.momentum_base, double(std::max<int64_t>(info.step - 1, 0)) /
                                                                             double(std::max<int64_t>(info.total_steps, 1)))
                    : opt_.momentum_base;
    methods_detail::ema_module(*teacher_encoder_, encoder_, momentum_);
    methods_detail::ema_module(*teacher_head_, head_, momentum_);
    step_ = info.step;
  }

  void collect(param_list<backend_type>& out, const std::string& prefix) {
    encoder_.collect(out, join_name(prefix, "student.backbone"));
    head_.collect(out, join_name(prefix, "student.head"));
  }
  /// Student BN statistics, the whole teacher (weights + statistics) and the center.
  void collect_buffers(methods_detail::buffer_list<backend_type>& out, const std::string& prefix) {
    methods_detail::module_buffers(encoder_, out, join_name(prefix, "student.backbone"));
    methods_detail::teacher_buffers(*teacher_encoder_, out, join_name(prefix, "teacher.backbone"));
    methods_detail::teacher_buffers(*teacher_head_, out, join_name(prefix, "teacher.head"));
    out.emplace_back(join_name(prefix, "center"), &center_);
    if (opt_.ibot_weight > 0.0f) out.emplace_back(join_name(prefix, "patch_center"), &patch_center_);
  }

  E& encoder() { return encoder_; }
  const E& encoder() const { return encoder_; }
  H& head() { return head_; }
  /// The EMA teacher (DINO evaluates the teacher's backbone).
  E& teacher_encoder() { return *teacher_encoder_; }
  const E& teacher_encoder() const { return *teacher_encoder_; }
  H& teacher_head() { return *teacher_head_; }
  /// The losses and their temperatures (their own center() stays unused: the live centers, on the
  /// method's backend, are center() and patch_center()).
  const dino& loss() const { return loss_; }
  const ibot_patch& patch_loss() const { return ibot_; }
  const dino_options& options() const { return opt_; }
  /// Data-parallel Sinkhorn-Knopp (DINOv2's distributed version): the targets of the [CLS] and iBOT
  /// patch rows over every replica's rows together. By default under dist::data_parallel (through
  /// its batch gather, set_batch_gather); `g` sets a communicator's all-reduce instead
  /// (dist::sync_sinkhorn_knopp), an empty g each replica's rows only (dist::unsync_sinkhorn_knopp).
  /// Host (cpu) methods only; a no-op under centering::center.
  void set_sinkhorn_group(sinkhorn_group g) { sinkhorn_.set_group(std::move(g), std::same_as<backend_type, cpu>, "dino_method"); }
  /// Back to the default (the batch gather's reductions under data_parallel).
  void set_sinkhorn_automatic() { sinkhorn_.set_automatic(); }
  /// Whether the Sinkhorn-Knopp targets are balanced over the ranks' rows together.
  bool sinkhorn_synchronized() const { return sinkhorn_.synchronized(replica_.world_size); }
  /// dist::data_parallel's gather of every rank's rows (n, ...), stacked in rank order (removed by
  /// its destructor): the default reductions of the data-parallel Sinkhorn-Knopp.
  void set_batch_gather(methods_detail::sinkhorn_sync::gather_fn gather)
    requires std::same_as<backend_type, cpu>
  {
    sinkhorn_.set_gather(std::move(gather));
  }
  /// Data-parallel replica `rank` of `world_size`, each with B images of every global batch of
  /// B world_size (dist::data_parallel calls it): the iBOT masks are this replica's images of the
  /// global batch's masks, so the replicas together draw what one process on the global batch would.
  void set_replica(int rank, int world_size) { replica_.set(rank, world_size); }
  const tensor<backend_type>& center() const { return center_; }
  const tensor<backend_type>& patch_center() const { return patch_center_; }
  /// EMA momentum of the latest after_step (momentum_base before the first).
  float momentum() const { return momentum_; }
  int64_t step_count() const { return step_; }
  void set_step_count(int64_t s) { step_ = s; }

  /// The DINO part of the latest train_step's loss (without KoLeo), and ln K, its value for
  /// uniform outputs: a loss stuck at ln K signals collapse.
  float last_dino_loss() const { return last_dino_loss_; }
  /// The iBOT loss of the latest step (before ibot_weight) and its number of hidden patches M.
  float last_ibot_loss() const { return last_ibot_loss_; }
  int64_t last_hidden_patches() const { return last_hidden_patches_; }
  double collapse_reference() const { return std::log(double(head_.out_dim())); }
  eval::collapse_report collapse_check(double tolerance = 0.01) const {
    return eval::dino_loss_collapse(last_dino_loss_, head_.out_dim(), tolerance);
  }

 private:
  /// The step's iBOT masks over the G B global-crop images and the token rows they select in the
  /// (G B (1 + L), D) token matrix: the G B [CLS] rows, then the M hidden patches image by image.
  struct masked_rows {
    patch_mask mask;
    std::vector<int64_t> rows;    // G B + M indices
    std::vector<int64_t> counts;  // hidden patches per image (G B)
    int64_t hidden = 0;           // M
    int64_t tokens = 0;           // 1 + L per image
  };

  masked_rows draw_masks(const tensor<backend_type>& xg) const {
    masked_rows m;
    if constexpr (MaskedTokenEncoder<E>) {
      const int64_t n = xg.dim(0), p = encoder_.patch_size();
      check<shape_error>(xg.dim(2) % p == 0 && xg.dim(3) % p == 0, "dino: global crops ", xg.shape(),
                         " are not a whole number of ", p, "x", p, " patches");
      const int64_t gh = xg.dim(2) / p, gw = xg.dim(3) / p, L = gh * gw;
      const rng gen = rng(opt_.seed).fork(uint64_t(step_));
      if (replica_.world_size == 1) {
        m.mask = ibot_masks(n, gh, gw, opt_.ibot_masks, gen);
      } else {
        // this replica's images of the global batch's masks: the global crops are (G, B W) in crop
        // order, and replica r holds images [r B, (r + 1) B) of each crop
        const int64_t G = opt_.global_views, B = n / G;
        const patch_mask all = ibot_masks(n * replica_.world_size, gh, gw, opt_.ibot_masks, gen);
        m.mask.batch = n;
        m.mask.tokens = all.tokens;
        for (int64_t g = 0; g < G; ++g) {
          const auto first = all.hidden.begin() + (g * B * replica_.world_size + replica_.first_row(B)) * all.tokens;
          m.mask.hidden.insert(m.mask.hidden.end(), first, first + B * all.tokens);
        }
      }
      m.tokens = 1 + L;
      for (int64_t i = 0; i < n; ++i) m.rows.push_back(i * m.tokens);
      for (int64_t i = 0; i < n; ++i) {
        int64_t c = 0;
        for (int64_t l = 0; l < L; ++l)
          if (m.mask.hidden[size_t(i * L + l)]) {
            m.rows.push_back(i * m.tokens + 1 + l);
            ++c;
          }
        m.counts.push_back(c);
        m.hidden += c;
      }
    }
    return m;
  }
  /// The teacher's output tokens of the unmasked global crops at mr.rows: (G B + M, D).
  tensor<backend_type> teacher_masked_rows(const tensor<backend_type>& xg, const masked_rows& mr) {
    if constexpr (MaskedTokenEncoder<E>) {
      const bool train = opt_.teacher == teacher_mode::train;
      tensor<backend_type> tok = train ? teacher_encoder_->forward_tokens(xg).y : teacher_encoder_->infer_tokens(xg);
      tok.reshape(shape{xg.dim(0) * mr.tokens, tok.dim(2)});
      return methods_detail::gather_rows(tok, mr.rows);
    } else {
      return {};
    }
  }
  /// The student's output tokens of the masked global crops at mr.rows (G B + M, D); its saved state in `saved`.
  tensor<backend_type> student_masked_rows(const tensor<backend_type>& xg, const masked_rows& mr,
                                           typename E::saved_type& saved) {
    if constexpr (MaskedTokenEncoder<E>) {
      auto o = encoder_.forward_tokens(xg, nullptr, &mr.mask);
      saved = std::move(o.saved);
      tensor<backend_type> tok = std::move(o.y);
      tok.reshape(shape{xg.dim(0) * mr.tokens, tok.dim(2)});
      return methods_detail::gather_rows(tok, mr.rows);
    } else {
      return {};
    }
  }
  /// Backward of student_masked_rows: dcls (G B, D) and dpatch (M, D) scattered back to their tokens.
  void student_masked_backward(typename E::saved_type saved, const masked_rows& mr, const tensor<backend_type>& dcls,
                               const tensor<backend_type>& dpatch) {
    if constexpr (MaskedTokenEncoder<E>) {
      const int64_t n = dcls.dim(0), D = dcls.dim(1);
      const tensor<backend_type> dsel = concat_batch(std::vector<const tensor<backend_type>*>{&dcls, &dpatch});
      tensor<backend_type> dtok = methods_detail::scatter_rows(dsel, mr.rows, n * mr.tokens);
      dtok.reshape(shape{n, mr.tokens, D});
      encoder_.backward_tokens(saved, dtok);
    }
  }
  /// Teacher logits (..., K) -> targets: Sinkhorn-Knopp, or centred and sharpened with `center`.
  tensor<backend_type> teacher_targets(const tensor<backend_type>& logits, const tensor<backend_type>& center,
                                       float tau) const {
    // (no finiteness check here: NaN logits give a NaN loss, which the step reports at its end)
    if (opt_.centering == dino_centering::sinkhorn_knopp) {
      if constexpr (std::same_as<backend_type, cpu>)
        return sinkhorn_knopp(logits, tau, opt_.sinkhorn_iterations, /*check_finite=*/false, sinkhorn_.group(replica_.world_size));
      else
        return sinkhorn_knopp(logits, tau, opt_.sinkhorn_iterations, /*check_finite=*/false);
    }
    return losses_detail::centered_softmax(logits, center, tau);
  }

  tensor<backend_type> teacher_features(const tensor<backend_type>& x) {
    constexpr bool has_bn = HasBatchNorms<E>;
    const bool train = opt_.teacher == teacher_mode::train || (opt_.teacher == teacher_mode::automatic && has_bn);
    if (train) return teacher_encoder_->forward(x).y;  // batch statistics; saved state dropped
    return teacher_encoder_->infer(x);
  }

  E encoder_;
  H head_;
  std::optional<E> teacher_encoder_;
  std::optional<H> teacher_head_;
  dino_options opt_;
  methods_detail::sinkhorn_sync sinkhorn_;  // whose rows Sinkhorn-Knopp balances (data-parallel, cpu only)
  methods_detail::replica_place replica_;  // data-parallel: this replica's place in the global batch
  dino loss_;
  ibot_patch ibot_;
  tensor<backend_type> center_;
  tensor<backend_type> patch_center_;       // iBOT's center of the patch logits (K)
  tensor<backend_type> teacher_out_;        // (G, B, K) of the latest step, for the center update
  tensor<backend_type> teacher_patch_out_;  // (M, K) of the latest step (iBOT)
  float momentum_ = 0.996f;
  float last_dino_loss_ = 0.0f;
  float last_ibot_loss_ = 0.0f;
  int64_t last_hidden_patches_ = 0;
  int64_t step_ = 0;
};

}  // namespace ssl
