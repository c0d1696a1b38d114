// FlagCX stand-in (selftest) -- p2p unit tests: argument checks that need no MPI.
#include "selftest_unittest.hpp"

#if SELFTEST_FAULT_BUILD
// Fault injection (stand-in only): with SELFTEST_FAULT_BUILD=1 this component does not compile,
// the way a release fails against a dependency that dropped a name it uses.
static const int kP2pRequirements = FLAGCX_SELFTEST_P2P_REQUIREMENTS_INITIALIZER;
#endif

TEST(P2pArgs, SendRecvRejectsANullComm) {
  float a[4] = {1, 2, 3, 4}, b[4] = {0, 0, 0, 0};
  EXPECT_EQ(flagcxSelftestSendRecv(a, b, 4, flagcxSelftestFloat, 0, 0, nullptr), flagcxSelftestInvalidArgument);
  EXPECT_EQ(b[0], 0.0f);
}
