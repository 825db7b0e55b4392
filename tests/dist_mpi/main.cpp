// The Catch2 main of test_dist_mpi: like support/catch_main.cpp, but Catch runs inside an MPI
// session (MPI_Init_thread before the first test, MPI_Finalize after the last), one process per rank.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <ssl/dist/mpi_communicator.hpp>

int main(int argc, char** argv) {
  ssl::dist::mpi_session mpi(argc, argv);
  return Catch::Session().run(argc, argv);
}
