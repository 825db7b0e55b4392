#pragma once
// The training loop shared by every method.
//
// for each epoch, for each batch from the loader:
//   zero grads -> method.train_step(views) -> [clip] -> set lr / wd from schedules -> opt.step()
//   -> method.after_step(info) -> log (CSV, progress line) -> [checkpoint]
// Stops after `epochs`, after `max_steps`, or at the first step boundary past `budget_seconds`
// (a method with `bool agree_to_stop(bool)`, such as dist::data_parallel, turns that into a
// decision shared by all ranks).
//
// Resume: a checkpoint holds the model (parameters + buffers), the optimizer state and
// (step, epoch). The loader's batches are a pure function of (seed, epoch, step), so a run
// resumed from a checkpoint continues exactly as the uninterrupted run would have.
//
// The backend is the method's (M::backend_type): for a device method each batch is uploaded once
// (pinned staging), the optimizer must be of the same backend (sgd<cuda>, ...), and checkpoints
// go through host copies (the same file format).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <unistd.h>
#include <utility>
#include <vector>

#include "../io/checkpoint.hpp"
#include "../methods/method.hpp"
#include "../optim/clip_grad.hpp"
#include "../optim/schedule.hpp"

namespace ssl {

struct trainer_options {
  int64_t epochs = 1;
  double budget_seconds = 0;  // wall-clock limit, 0 = none
  int64_t max_steps = 0;      // step limit (counted from step 0, across resumes), 0 = none
  int64_t stop_at_step = 0;   // interrupt this call at that step (schedules still plan for the full run), 0 = never
  any_schedule lr;            // lr(step, total_steps); empty: keep the optimizer's lr
  any_schedule weight_decay;  // wd(step, total_steps); empty: keep the optimizer's
  double clip_grad_norm = 0;  // clip the global gradient norm, 0 = off
  std::string csv_log;        // "step,epoch,loss,lr,images_per_s,seconds" per step; empty = none
  std::string checkpoint_path;  // written (atomically) every checkpoint_every steps and at the end
  int64_t checkpoint_every = 0;
  std::string resume_from;    // checkpoint to start from; empty = fresh start
  bool progress = true;       // a progress line on stderr (when it is a terminal, else every 50 steps)
};

struct train_summary {
  int64_t steps = 0;           // total steps done (including those before a resume)
  int64_t epochs_started = 0;
  double seconds = 0;          // wall time of this call
  double images_per_second = 0;
  float last_loss = 0;
  float mean_loss_last_100 = 0;
  bool stopped_by_budget = false;
};

namespace detail {
/// The model's checkpointed tensors (parameter values, then buffers) as host tensors, named as
/// in the checkpoint: on the CPU the tensors themselves; on a device backend host copies,
/// refreshed by pull() before a save and written back by push() after a load, so a GPU run
/// writes the same file as a CPU run.
template <class B>
class checkpoint_tensors {
 public:
  template <class M>
  checkpoint_tensors(M& m, const param_list<B>& params) {
    for (const auto& r : params) model_.emplace_back(r.name, &r.p->value);
    if constexpr (requires { m.collect_buffers(model_, std::string{}); }) m.collect_buffers(model_, "");
    if constexpr (!std::same_as<B, cpu>)
      for (const auto& [n, t] : model_) host_.emplace_back(t->shape());
  }
  tensor_refs refs() {
    tensor_refs out;
    for (size_t i = 0; i < model_.size(); ++i) {
      if constexpr (std::same_as<B, cpu>)
        out.push_back({model_[i].first, model_[i].second});
      else
        out.push_back({model_[i].first, &host_[i]});
    }
    return out;
  }
  void pull() {
    if constexpr (!std::same_as<B, cpu>)
      for (size_t i = 0; i < model_.size(); ++i) model_[i].second->copy_to_host(host_[i].data());
  }
  void push() {
    if constexpr (!std::same_as<B, cpu>)
      for (size_t i = 0; i < model_.size(); ++i) model_[i].second->copy_from_host(host_[i].data());
  }

 private:
  std::vector<std::pair<std::string, tensor<B>*>> model_;
  std::vector<tensor<cpu>> host_;  // device backends only
};

/// The loader's host batch on the method's backend: the views themselves on the CPU; on a
/// device, one copy per view through pinned staging (copy_to_device), into reused tensors.
template <class B>
const std::vector<tensor<B>>& views_on_backend(const std::vector<tensor<cpu>>& host, std::vector<tensor<B>>& dev) {
  if constexpr (std::same_as<B, cpu>) {
    return host;
  } else {
    dev.resize(host.size());
    for (size_t i = 0; i < host.size(); ++i) copy_to_device(host[i], dev[i]);
    return dev;
  }
}
}  // namespace detail

template <class M, class O, class Loader>
train_summary train(M& method, O& opt, Loader& loader, const trainer_options& o) {
  static_assert(Method<M>, "ssl::train: M must satisfy ssl::Method (train_step, after_step, collect, encoder)");
  check<value_error>(o.epochs >= 1, "train: epochs must be >= 1, got ", o.epochs);
  check<value_error>(o.budget_seconds >= 0 && o.max_steps >= 0, "train: budget_seconds and max_steps must be >= 0");
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  const int64_t steps_per_epoch = loader.steps_per_epoch();
  check<value_error>(steps_per_epoch > 0, "train: the loader yields no full batch (dataset of ",
                     loader.dataset_size(), " images, batch size ", loader.options().batch_size, ")");
  const int64_t total = o.max_steps > 0 ? std::min(o.max_steps, o.epochs * steps_per_epoch) : o.epochs * steps_per_epoch;

  using B = typename M::backend_type;
  param_list<B> params;
  method.collect(params, "");
  detail::checkpoint_tensors<B> model(method, params);
  std::vector<tensor<B>> device_views;  // device backends: the batch, uploaded once per step

  int64_t step = 0;
  if (!o.resume_from.empty()) {
    const training_state st = load_checkpoint(o.resume_from, model.refs(), opt);
    model.push();
    step = st.step;
  }
  auto save = [&](int64_t s) {
    if (o.checkpoint_path.empty()) return;
    training_state st;
    st.step = s;
    st.epoch = s / steps_per_epoch;
    model.pull();
    save_checkpoint(o.checkpoint_path, model.refs(), opt.state_dict(), st);
  };

  std::ofstream csv;
  if (!o.csv_log.empty()) {
    csv.open(o.csv_log, step > 0 ? std::ios::app : std::ios::trunc);
    check<io_error>(bool(csv), "train: cannot open CSV log '", o.csv_log, "'");
    if (step == 0) csv << "step,epoch,loss,lr,images_per_s,seconds\n";
  }
  const bool tty = isatty(fileno(stderr));

  train_summary sum;
  std::vector<float> recent;
  int64_t images = 0;
  bool stop = false;
  while (!stop && step < total && !(o.stop_at_step > 0 && step >= o.stop_at_step)) {
    const int64_t epoch = step / steps_per_epoch;
    loader.start(epoch, step % steps_per_epoch);
    ++sum.epochs_started;
    while (auto b = loader.next()) {
      const auto ts = clock::now();
      for (auto& r : params) r.p->grad.zero();
      const step_stats st = method.train_step(detail::views_on_backend(b->views, device_views));
      if (o.clip_grad_norm > 0) clip_grad_norm(params, o.clip_grad_norm);
      if (o.lr) opt.set_lr(o.lr(step, total));
      if (o.weight_decay) opt.set_weight_decay(o.weight_decay(step, total));
      opt.step();
      ++step;
      method.after_step(step_info{step, total, epoch});
      images += b->size();
      sum.last_loss = st.loss;
      recent.push_back(st.loss);
      if (recent.size() > 100) recent.erase(recent.begin());
      const double elapsed = std::chrono::duration<double>(clock::now() - t0).count();
      const double ips = double(b->size()) / std::chrono::duration<double>(clock::now() - ts).count();
      if (csv) csv << step << ',' << epoch << ',' << st.loss << ',' << opt.lr() << ',' << ips << ',' << elapsed << '\n';
      if (o.progress && (tty || step % 50 == 0 || step == total)) {
        const double rate = double(images) / elapsed;
        const double eta = o.budget_seconds > 0 ? std::max(0.0, o.budget_seconds - elapsed)
                                                 : double(total - step) * double(b->size()) / std::max(rate, 1e-9);
        std::fprintf(stderr, "%sstep %lld/%lld  epoch %lld  loss %.4f  %.0f img/s  %.0fs elapsed  ETA %.0fs%s",
                     tty ? "\r" : "", (long long)step, (long long)total, (long long)epoch, st.loss, rate, elapsed, eta,
                     tty ? "   " : "\n");
      }
      if (o.checkpoint_every > 0 && step % o.checkpoint_every == 0) save(step);
      if (step >= total) break;
      if (o.stop_at_step > 0 && step >= o.stop_at_step) {
        stop = true;
        break;
      }
      bool over_budget = o.budget_seconds > 0 && elapsed >= o.budget_seconds;
      // Data-parallel replicas (dist/data_parallel.hpp) stop together: any rank over budget stops all.
      if constexpr (requires { method.agree_to_stop(over_budget); })
        if (o.budget_seconds > 0) over_budget = method.agree_to_stop(over_budget);
      if (over_budget) {
        sum.stopped_by_budget = true;
        stop = true;
        break;
      }
    }
  }
  if (o.progress && tty) std::fprintf(stderr, "\n");
  save(step);
  sum.steps = step;
  sum.seconds = std::chrono::duration<double>(clock::now() - t0).count();
  sum.images_per_second = double(images) / std::max(sum.seconds, 1e-9);
  double s = 0;
  for (float l : recent) s += l;
  sum.mean_loss_last_100 = recent.empty() ? 0.0f : float(s / double(recent.size()));
  return sum;
}

}  // namespace ssl
