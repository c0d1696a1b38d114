// FlagCX stand-in (selftest) -- p2p MPI tests: a ring exchange, and bad peers.
#include <vector>

#include "selftest_unittest.hpp"

TEST_F(SelftestCommTest, SendRecvRing) {
  const size_t count = 31;
  std::vector<float> send(count), recv(count, -1.0f);
  for (size_t i = 0; i < count; i++) send[i] = (float)(100 * rank + i);
  const int next = (rank + 1) % nranks, prev = (rank + nranks - 1) % nranks;
  ASSERT_EQ(flagcxSelftestSendRecv(send.data(), recv.data(), count, flagcxSelftestFloat, next, prev, comm),
            flagcxSelftestSuccess);
  long bad = 0;
  for (size_t i = 0; i < count; i++)
    if (recv[i] != (float)(100 * prev + i)) bad++;
  EXPECT_EQ(selftestGlobalCount(bad), 0);
}

TEST_F(SelftestCommTest, SendRecvRejectsBadPeers) {
  float a = 0, b = 0;
  EXPECT_EQ(flagcxSelftestSendRecv(&a, &b, 1, flagcxSelftestFloat, nranks, 0, comm), flagcxSelftestInvalidArgument);
  EXPECT_EQ(flagcxSelftestSendRecv(&a, &b, 1, flagcxSelftestFloat, 0, -1, comm), flagcxSelftestInvalidArgument);
}
