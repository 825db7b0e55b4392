// SimCLR on Fashion-MNIST, data-parallel: W ranks each train a replica on their shard of every
// global batch, with the gradients averaged over the ranks and NT-Xent's negatives taken from the
// whole global batch (ssl::dist::global_nt_xent), so the run follows a single process with batch
// W x --batch. Ranks are threads of this process (ssl::dist::thread_group, --ranks W, --threads
// compute threads each); built with MPI, the same program also runs one rank per process:
//   mpirun -np 2 simclr_data_parallel --mpi --threads 1
// --sync-bn makes every BatchNorm use the statistics of the global batch (SimCLR's global BN).
// Rank 0 writes the CSV log and checkpoint and reports k-NN (and the linear probe) beside a
// random-init encoder, as simclr_fashion_mnist does.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <ssl/dist.hpp>
#include <ssl/ssl.hpp>
#if defined(SSL_EXAMPLE_MPI)
#include <ssl/dist/mpi_communicator.hpp>
#endif

#include "example_support.hpp"

using namespace ssl;
using namespace ssl_example;

namespace {
struct dp_settings {
  train_settings s;
  int ranks = 2;
  float temperature = 0.5f;
  bool local_negatives = false;
  bool sync_bn = false;
  int64_t max_steps = 0;  // 0: the budget and --epochs decide
};

template <class Loss, dist::Communicator C>
train_summary train_rank(C& comm, Loss loss, const data::in_memory_dataset& train, const dp_settings& d,
                         convnet_s<>& encoder_out) {
  const train_settings& s = d.s;
  convnet_s<> encoder(1, rng(s.seed));
  projection_mlp<> projector({.in_dim = 256, .hidden_dim = 256, .out_dim = 128}, rng(s.seed).fork(1));
  if (d.sync_bn) {  // global BN: every BatchNorm's batch statistics over all ranks' images
    dist::sync_batch_norm(encoder, comm);
    dist::sync_batch_norm(projector, comm);
  }
  simclr method(std::move(encoder), std::move(projector), std::move(loss));
  dist::data_parallel dp(method, comm);
  param_list<cpu> params;
  dp.collect(params, "");
  adamw opt(params, {.lr = s.lr, .weight_decay = 0.0f});
  data::loader loader(train, augment::fashion_mnist_simclr(28),
                      {.batch_size = s.batch, .num_workers = s.workers, .seed = s.seed, .rank = comm.rank(),
                       .world_size = comm.world_size()});
  trainer_options to;
  to.epochs = s.epochs;
  to.budget_seconds = s.minutes * 60;
  to.max_steps = d.max_steps;
  const bool lead = comm.rank() == 0;
  to.progress = lead;
  if (lead) {
    to.csv_log = s.csv;
    to.checkpoint_path = s.checkpoint;
  }
  const train_summary sum = ssl::train(dp, opt, loader, to);
  const float spread = dist::max_replica_difference(method, comm);
  if (lead) {
    std::printf("trained %lld steps (%.2f epochs) of %d ranks x %lld images in %.0f s, %.0f img/s (all ranks), final loss %.4f; "
                "replicas differ by %g\n",
                (long long)sum.steps, double(sum.steps) / double(loader.steps_per_epoch()), comm.world_size(),
                (long long)s.batch, sum.seconds, sum.images_per_second * comm.world_size(), sum.mean_loss_last_100, spread);
    copy_state(method.encoder(), encoder_out);
  }
  return sum;
}

template <dist::Communicator C>
void run_rank(C& comm, const data::in_memory_dataset& train, const dp_settings& d, convnet_s<>& encoder_out) {
  if (d.local_negatives)
    train_rank(comm, nt_xent(d.temperature), train, d, encoder_out);
  else
    train_rank(comm, dist::global_nt_xent<C>(comm, d.temperature), train, d, encoder_out);
}
}  // namespace

int main(int argc, char** argv) {
#if defined(SSL_EXAMPLE_MPI)
  dist::mpi_session mpi(argc, argv);
#endif
  CLI::App app{"SimCLR (ConvNet-S) on Fashion-MNIST, data-parallel over ranks: train without labels, report k-NN"};
  dp_settings d;
  d.s.minutes = 5;
  d.s.threads = 1;
  d.s.workers = 1;
  d.s.batch = 128;
  bool use_mpi = false;
  add_common_options(app, d.s, "images per step and rank (two views each); the global batch is ranks x batch");
  app.add_option("--ranks", d.ranks, "ranks as threads of this process (--threads compute threads each)");
  app.add_option("--temperature", d.temperature, "NT-Xent temperature");
  app.add_flag("--local-negatives", d.local_negatives,
               "each rank's NT-Xent over its own batch only (no gathering), as plain DDP with ssl::nt_xent would");
  app.add_flag("--sync-bn", d.sync_bn,
               "SyncBatchNorm (SimCLR's global BN): batch statistics over every rank's images, as one process on the global batch");
  app.add_option("--max-steps", d.max_steps,
                 "stop after this many steps (load-independent: the same steps give the same weights with --ranks threads or --mpi processes of one binary)");
  app.add_option("--checkpoint", d.s.checkpoint, "checkpoint file (safetensors), written by rank 0 at the end");
#if defined(SSL_EXAMPLE_MPI)
  app.add_flag("--mpi", use_mpi, "one rank per MPI process (run under mpirun) instead of --ranks threads");
#endif
  CLI11_PARSE(app, argc, argv);

  const auto train = data::load_fashion_mnist(data::split::train, d.s.data_dir);
  const auto test = data::load_fashion_mnist(data::split::test, d.s.data_dir);
  convnet_s<> trained(1);
  int rank = 0;
  if (use_mpi) {
#if defined(SSL_EXAMPLE_MPI)
    dist::mpi_communicator comm;
    rank = comm.rank();
    set_num_threads(d.s.threads);
    run_rank(comm, train, d, trained);
#endif
  } else {
    dist::thread_group(d.ranks, d.s.threads).run([&](dist::thread_communicator& comm) { run_rank(comm, train, d, trained); });
  }
  if (rank != 0) return 0;
  std::printf("Fashion-MNIST: %lld train, %lld test images\n", (long long)train.size(), (long long)test.size());
  set_num_threads(std::max(d.s.threads, 2));
  const double base = report_random_init_knn(train, test, d.s.seed, d.s.baseline_cache);
  report_encoder("SimCLR (data-parallel)", trained, train, test, base, d.s);
  return 0;
}
