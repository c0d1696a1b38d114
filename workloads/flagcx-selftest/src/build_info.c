/* FlagCX stand-in (selftest): build information, written by hand (this tree has no JSON library). */
#include "selftest_internal.h"

#ifndef SELFTEST_GENERATION
#define SELFTEST_GENERATION "unknown"
#endif

#define SELFTEST_STR2(x) #x
#define SELFTEST_STR(x) SELFTEST_STR2(x)

const char *flagcxSelftestGetBuildInfo(void) {
  return "{\"generation\":\"" SELFTEST_GENERATION "\",\"name\":\"FlagCX stand-in (selftest)\","
         "\"version\":" SELFTEST_STR(FLAGCX_SELFTEST_VERSION_CODE) "}";
}
