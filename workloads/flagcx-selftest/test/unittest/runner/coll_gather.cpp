// FlagCX stand-in (selftest) -- runner MPI tests: allgather, broadcast, reduce, reducescatter,
// alltoall, gather, scatter.  Receive buffers start at -1, which no rank sends, so a
// collective that exchanges nothing fails.
#include <vector>

#include "selftest_unittest.hpp"

TEST_F(SelftestCommTest, AllGatherPutsEveryRanksBlockInPlace) {
  const size_t block = 37;
  std::vector<float> send(block), recv(block * nranks, -1.0f);
  for (size_t j = 0; j < block; j++) send[j] = (float)(1000 * rank + j);
  ASSERT_EQ(flagcxSelftestAllGather(send.data(), recv.data(), block, flagcxSelftestFloat, comm),
            flagcxSelftestSuccess);
  long bad = 0;
  for (int r = 0; r < nranks; r++)
    for (size_t j = 0; j < block; j++)
      if (recv[r * block + j] != (float)(1000 * r + j)) bad++;
  EXPECT_EQ(selftestGlobalCount(bad), 0);
}

TEST_F(SelftestCommTest, BroadcastFromEveryRoot) {
  const size_t count = 53;
  long bad = 0;
  for (int root = 0; root < nranks; root++) {
    std::vector<float> send(count), recv(count, -1.0f);
    for (size_t i = 0; i < count; i++) send[i] = (float)(1000 * rank + i);
    ASSERT_EQ(flagcxSelftestBroadcast(send.data(), recv.data(), count, flagcxSelftestFloat, root, comm),
              flagcxSelftestSuccess);
    for (size_t i = 0; i < count; i++)
      if (recv[i] != (float)(1000 * root + i)) bad++;
  }
  EXPECT_EQ(selftestGlobalCount(bad), 0);
}

TEST_F(SelftestCommTest, BroadcastRejectsABadRoot) {
  float a = 0, b = 0;
  EXPECT_EQ(flagcxSelftestBroadcast(&a, &b, 1, flagcxSelftestFloat, nranks, comm), flagcxSelftestInvalidArgument);
  EXPECT_EQ(flagcxSelftestBroadcast(&a, &b, 1, flagcxSelftestFloat, -1, comm), flagcxSelftestInvalidArgument);
}

TEST_F(SelftestCommTest, ReduceToEveryRoot) {
  const size_t count = 29;
  long bad = 0;
  for (int root = 0; root < nranks; root++) {
    std::vector<float> send(count, (float)(rank + 1)), recv(count, -1.0f);
    ASSERT_EQ(flagcxSelftestReduce(send.data(), recv.data(), count, flagcxSelftestFloat, flagcxSelftestSum,
                                   root, comm),
              flagcxSelftestSuccess);
    for (size_t i = 0; i < count; i++) {
      float expected = rank == root ? (float)(nranks * (nranks + 1) / 2) : -1.0f;
      if (recv[i] != expected) bad++;
    }
  }
  EXPECT_EQ(selftestGlobalCount(bad), 0);
}

TEST_F(SelftestCommTest, ReduceScatterSumsEachBlock) {
  const size_t block = 19;
  std::vector<float> send(block * nranks), recv(block, -1.0f);
  for (size_t i = 0; i < send.size(); i++) send[i] = (float)(i / block + 1);  // block b holds b + 1
  ASSERT_EQ(flagcxSelftestReduceScatter(send.data(), recv.data(), block, flagcxSelftestFloat,
                                        flagcxSelftestSum, comm),
            flagcxSelftestSuccess);
  long bad = 0;
  for (size_t j = 0; j < block; j++)
    if (recv[j] != (float)((rank + 1) * nranks)) bad++;
  EXPECT_EQ(selftestGlobalCount(bad), 0);
}

TEST_F(SelftestCommTest, AlltoAllRoutesEveryBlock) {
  const size_t block = 11;
  std::vector<float> send(block * nranks), recv(block * nranks, -1.0f);
  for (size_t i = 0; i < send.size(); i++) send[i] = (float)(100 * rank + i / block);  // to rank i/block
  ASSERT_EQ(flagcxSelftestAlltoAll(send.data(), recv.data(), block, flagcxSelftestFloat, comm),
            flagcxSelftestSuccess);
  long bad = 0;
  for (size_t i = 0; i < recv.size(); i++)
    if (recv[i] != (float)(100 * (i / block) + rank)) bad++;
  EXPECT_EQ(selftestGlobalCount(bad), 0);
}

TEST_F(SelftestCommTest, GatherAndScatterAtRootZero) {
  const size_t block = 7;
  std::vector<float> send(block * nranks), recv(block * nranks, -1.0f);
  for (size_t i = 0; i < send.size(); i++) send[i] = (float)(100 * rank + i / block);
  ASSERT_EQ(flagcxSelftestGather(send.data(), recv.data(), block, flagcxSelftestFloat, 0, comm),
            flagcxSelftestSuccess);
  long bad = 0;
  if (rank == 0)
    for (size_t i = 0; i < recv.size(); i++)
      if (recv[i] != (float)(100 * (i / block))) bad++;  // rank r's first block holds 100 r
  std::vector<float> part(block, -1.0f);
  ASSERT_EQ(flagcxSelftestScatter(send.data(), part.data(), block, flagcxSelftestFloat, 0, comm),
            flagcxSelftestSuccess);
  for (size_t j = 0; j < block; j++)
    if (part[j] != (float)rank) bad++;  // root 0's block r holds r
  EXPECT_EQ(selftestGlobalCount(bad), 0);
}
