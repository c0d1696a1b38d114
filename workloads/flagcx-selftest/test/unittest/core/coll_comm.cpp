// FlagCX stand-in (selftest) -- core MPI tests: the communicator matches MPI_COMM_WORLD.
#include "selftest_unittest.hpp"

TEST_F(SelftestCommTest, RankAndCountMatchMpi) {
  int mpiRank = -1, mpiSize = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &mpiRank);
  MPI_Comm_size(MPI_COMM_WORLD, &mpiSize);
  EXPECT_EQ(rank, mpiRank);
  EXPECT_EQ(nranks, mpiSize);
  EXPECT_EQ(flagcxSelftestBarrier(comm), flagcxSelftestSuccess);
}

TEST(SelftestComm, NullArgumentsAreRejected) {
  int value = 0;
  EXPECT_EQ(flagcxSelftestCommInitWorld(nullptr), flagcxSelftestInvalidArgument);
  EXPECT_EQ(flagcxSelftestCommRank(nullptr, &value), flagcxSelftestInvalidArgument);
  EXPECT_EQ(flagcxSelftestCommCount(nullptr, &value), flagcxSelftestInvalidArgument);
  EXPECT_EQ(flagcxSelftestCommDestroy(nullptr), flagcxSelftestInvalidArgument);
}
