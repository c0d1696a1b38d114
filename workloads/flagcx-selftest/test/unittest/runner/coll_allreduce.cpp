// FlagCX stand-in (selftest) -- runner MPI tests: allreduce results, every type and op.
#include <stdint.h>

#include <vector>

#include "selftest_unittest.hpp"

// Sum of floats: sendbuff[i] = (i % 10) * (rank + 1), so every rank must receive
// (i % 10) * n(n+1)/2 -- over the whole buffer, an odd length included.
TEST_F(SelftestCommTest, AllReduceSumFloat) {
  const size_t count = 4099;
  std::vector<float> send(count), recv(count, -1.0f);
  for (size_t i = 0; i < count; i++) send[i] = (float)((i % 10) * (rank + 1));
  ASSERT_EQ(flagcxSelftestAllReduce(send.data(), recv.data(), count, flagcxSelftestFloat,
                                    flagcxSelftestSum, comm),
            flagcxSelftestSuccess);
  const double factor = nranks * (nranks + 1) / 2.0;
  long bad = 0;
  for (size_t i = 0; i < count; i++)
    if (recv[i] != (float)((i % 10) * factor)) bad++;
  EXPECT_EQ(bad, 0) << "elements wrong on rank " << rank;
  EXPECT_EQ(selftestGlobalCount(bad), 0) << "elements wrong over all ranks";
}

// Integer ops: sendbuff = rank + 1 everywhere.
TEST_F(SelftestCommTest, AllReduceInt32EveryOp) {
  const size_t count = 64;
  long bad = 0;
  struct Case {
    flagcxSelftestRedOp_t op;
    int64_t expected;
  } cases[] = {{flagcxSelftestSum, (int64_t)nranks * (nranks + 1) / 2},
               {flagcxSelftestProd, 1},
               {flagcxSelftestMax, nranks},
               {flagcxSelftestMin, 1}};
  for (int r = 2; r <= nranks; r++) cases[1].expected *= r;
  for (const Case &c : cases) {
    std::vector<int32_t> send(count, rank + 1), recv(count, -1);
    ASSERT_EQ(flagcxSelftestAllReduce(send.data(), recv.data(), count, flagcxSelftestInt32, c.op, comm),
              flagcxSelftestSuccess);
    for (size_t i = 0; i < count; i++)
      if (recv[i] != (int32_t)c.expected) bad++;
  }
  EXPECT_EQ(selftestGlobalCount(bad), 0);
}

TEST_F(SelftestCommTest, AllReduceDoubleAndUint8Sum) {
  const size_t count = 100;
  std::vector<double> sd(count, 0.5 * (rank + 1)), rd(count, -1.0);
  std::vector<uint8_t> su(count, 1), ru(count, 0);
  ASSERT_EQ(flagcxSelftestAllReduce(sd.data(), rd.data(), count, flagcxSelftestDouble, flagcxSelftestSum, comm),
            flagcxSelftestSuccess);
  ASSERT_EQ(flagcxSelftestAllReduce(su.data(), ru.data(), count, flagcxSelftestUint8, flagcxSelftestSum, comm),
            flagcxSelftestSuccess);
  long bad = 0;
  for (size_t i = 0; i < count; i++) {
    if (rd[i] != 0.25 * nranks * (nranks + 1)) bad++;
    if (ru[i] != (uint8_t)nranks) bad++;
  }
  EXPECT_EQ(selftestGlobalCount(bad), 0);
}
