// FlagCX stand-in (selftest) -- core unit tests: error strings, version, type sizes, build
// information, fault names.  No MPI needed.  Not FlagCX's code.
#include <string.h>

#include <set>
#include <string>

#include "selftest_unittest.hpp"

TEST(CoreErrors, EveryResultHasItsOwnString) {
  const flagcxSelftestResult_t results[] = {flagcxSelftestSuccess, flagcxSelftestInvalidArgument,
                                            flagcxSelftestNotSupported, flagcxSelftestMpiError,
                                            flagcxSelftestSystemError};
  std::set<std::string> seen;
  for (flagcxSelftestResult_t r : results) {
    const char *s = flagcxSelftestGetErrorString(r);
    ASSERT_NE(s, nullptr);
    EXPECT_GT(strlen(s), 0u);
    seen.insert(s);
  }
  EXPECT_EQ(seen.size(), sizeof(results) / sizeof(results[0]));
  EXPECT_STREQ(flagcxSelftestGetErrorString(flagcxSelftestSuccess), "success");
  EXPECT_STREQ(flagcxSelftestGetErrorString((flagcxSelftestResult_t)99), "unknown result");
}

TEST(CoreVersion, ReportsTheHeaderVersion) {
  int version = -1;
  EXPECT_EQ(flagcxSelftestGetVersion(nullptr), flagcxSelftestInvalidArgument);
  ASSERT_EQ(flagcxSelftestGetVersion(&version), flagcxSelftestSuccess);
  EXPECT_EQ(version, FLAGCX_SELFTEST_VERSION_CODE);
}

TEST(CoreTypes, SizesOfEveryType) {
  EXPECT_EQ(flagcxSelftestTypeSize(flagcxSelftestFloat), 4u);
  EXPECT_EQ(flagcxSelftestTypeSize(flagcxSelftestDouble), 8u);
  EXPECT_EQ(flagcxSelftestTypeSize(flagcxSelftestInt8), 1u);
  EXPECT_EQ(flagcxSelftestTypeSize(flagcxSelftestUint8), 1u);
  EXPECT_EQ(flagcxSelftestTypeSize(flagcxSelftestInt32), 4u);
  EXPECT_EQ(flagcxSelftestTypeSize(flagcxSelftestUint32), 4u);
  EXPECT_EQ(flagcxSelftestTypeSize(flagcxSelftestInt64), 8u);
  EXPECT_EQ(flagcxSelftestTypeSize(flagcxSelftestUint64), 8u);
  EXPECT_EQ(flagcxSelftestTypeSize(flagcxSelftestNumTypes), 0u);
}

TEST(CoreBuildInfo, IsAJsonObjectNamingTheStandIn) {
  std::string info = flagcxSelftestGetBuildInfo();
  ASSERT_FALSE(info.empty());
  EXPECT_EQ(info.front(), '{');
  EXPECT_EQ(info.back(), '}');
  EXPECT_NE(info.find("\"name\":\"FlagCX stand-in (selftest)\""), std::string::npos) << info;
  EXPECT_NE(info.find("\"generation\":\""), std::string::npos) << info;
}

TEST(CoreFaults, NamesAreTheSwitchValues) {
  EXPECT_STREQ(flagcxSelftestFaultName(flagcxSelftestFaultNone), "none");
  EXPECT_STREQ(flagcxSelftestFaultName(flagcxSelftestFaultCorrupt), "corrupt");
  EXPECT_STREQ(flagcxSelftestFaultName(flagcxSelftestFaultCorruptQuiet), "corrupt-quiet");
  EXPECT_STREQ(flagcxSelftestFaultName(flagcxSelftestFaultNoExchange), "noexchange");
  EXPECT_STREQ(flagcxSelftestFaultName(flagcxSelftestFaultExit0), "exit0");
  EXPECT_STREQ(flagcxSelftestFaultName(flagcxSelftestFaultCrashRank1), "crash-rank1");
  EXPECT_STREQ(flagcxSelftestFaultName((flagcxSelftestFault_t)42), "unknown");
}
