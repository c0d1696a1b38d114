// FlagCX stand-in (selftest) -- runner unit tests: argument checks that need no MPI.
#include <vector>

#include "selftest_unittest.hpp"

TEST(RunnerArgs, EveryCollectiveRejectsANullComm) {
  std::vector<float> a(8, 1.0f), b(8, 0.0f);
  const flagcxSelftestDataType_t f = flagcxSelftestFloat;
  const flagcxSelftestRedOp_t s = flagcxSelftestSum;
  EXPECT_EQ(flagcxSelftestAllReduce(a.data(), b.data(), 8, f, s, nullptr), flagcxSelftestInvalidArgument);
  EXPECT_EQ(flagcxSelftestAllGather(a.data(), b.data(), 4, f, nullptr), flagcxSelftestInvalidArgument);
  EXPECT_EQ(flagcxSelftestReduceScatter(a.data(), b.data(), 4, f, s, nullptr), flagcxSelftestInvalidArgument);
  EXPECT_EQ(flagcxSelftestAlltoAll(a.data(), b.data(), 4, f, nullptr), flagcxSelftestInvalidArgument);
  EXPECT_EQ(flagcxSelftestBroadcast(a.data(), b.data(), 8, f, 0, nullptr), flagcxSelftestInvalidArgument);
  EXPECT_EQ(flagcxSelftestReduce(a.data(), b.data(), 8, f, s, 0, nullptr), flagcxSelftestInvalidArgument);
  EXPECT_EQ(flagcxSelftestGather(a.data(), b.data(), 4, f, 0, nullptr), flagcxSelftestInvalidArgument);
  EXPECT_EQ(flagcxSelftestScatter(a.data(), b.data(), 4, f, 0, nullptr), flagcxSelftestInvalidArgument);
  EXPECT_EQ(b, std::vector<float>(8, 0.0f));
}
