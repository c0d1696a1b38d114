// FlagCX stand-in (selftest) -- helpers shared by the stand-in's gtest suites.  Not FlagCX's code.
#ifndef SELFTEST_UNITTEST_HPP_
#define SELFTEST_UNITTEST_HPP_

#include <gtest/gtest.h>

#include <stdio.h>

#include "flagcx_selftest.h"

#ifdef SELFTEST_WITH_MPI
#include <mpi.h>
#endif

// main() of every stand-in test binary.  Differs from gtest_main in two ways: the MPI suites
// initialise MPI themselves, and the fault injection "exit0" (stand-in only) makes the
// binary exit 0 whatever its tests said -- so that a checker that trusts exit codes is caught.
inline int selftestRunTests(int argc, char **argv) {
#ifdef SELFTEST_WITH_MPI
  MPI_Init(&argc, &argv);
#endif
  ::testing::InitGoogleTest(&argc, argv);
  int rc = RUN_ALL_TESTS();
#ifdef SELFTEST_WITH_MPI
  MPI_Finalize();
#endif
  if (flagcxSelftestGetFault() == flagcxSelftestFaultExit0 && rc != 0) {
    fprintf(stderr, "FlagCX stand-in (selftest): fault injection exit0: exiting 0 although tests failed\n");
    return 0;
  }
  return rc;
}

#ifdef SELFTEST_WITH_MPI
// Every rank sees the same verdict: the number of bad elements summed over all ranks (with
// plain MPI, so that the stand-in's own collectives cannot hide a fault).
inline long selftestGlobalCount(long local) {
  long global = 0;
  MPI_Allreduce(&local, &global, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
  return global;
}

class SelftestCommTest : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_EQ(flagcxSelftestCommInitWorld(&comm), flagcxSelftestSuccess);
    ASSERT_EQ(flagcxSelftestCommRank(comm, &rank), flagcxSelftestSuccess);
    ASSERT_EQ(flagcxSelftestCommCount(comm, &nranks), flagcxSelftestSuccess);
  }
  void TearDown() override {
    MPI_Barrier(MPI_COMM_WORLD);
    flagcxSelftestCommDestroy(comm);
  }
  flagcxSelftestComm_t comm = nullptr;
  int rank = 0;
  int nranks = 1;
};
#endif

#endif
