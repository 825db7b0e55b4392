#pragma once
// Umbrella for ssl/dist/: data-parallel training over ranks (threads of one process here; MPI
// processes with ssl/dist/mpi_communicator.hpp, included explicitly since it needs <mpi.h>).
#include "dist/communicator.hpp"
#include "dist/data_parallel.hpp"
#include "dist/global_moco_v3.hpp"
#include "dist/global_nt_xent.hpp"
#include "dist/sync_batch_norm.hpp"
#include "dist/sync_sinkhorn_knopp.hpp"
#include "dist/thread_group.hpp"
