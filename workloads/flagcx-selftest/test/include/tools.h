// FlagCX stand-in (selftest) -- perf-test options.  Not FlagCX's code.
//
// test/tools.cc parses the command line; its getopt string is the interface generation's
// own (FlagCX added -d / -o after v0.13), everything else is shared by test/perf_common.cc.
#ifndef SELFTEST_TOOLS_H_
#define SELFTEST_TOOLS_H_

#include <stddef.h>

#include <vector>

#include "flagcx_selftest.h"

struct PerfOptions {
  size_t minBytes = (size_t)1 << 20;
  size_t maxBytes = (size_t)1 << 30;
  size_t stepFactor = 2;
  int warmupIters = 5;
  int iters = 20;
  int printBuffer = 0;
  int root = -1;  // -1: every rank takes a turn as root
  unsigned long splitMask = 0;
  int localRegister = 0;
  // The datatype / op sweeps.  Without -d / -o (and in generations without them): float / sum.
  std::vector<flagcxSelftestDataType_t> types{flagcxSelftestFloat};
  std::vector<flagcxSelftestRedOp_t> ops{flagcxSelftestSum};
};

// Parse argv into *opt (test/tools.cc).  Runs before MPI_Init, as in FlagCX: every rank
// reports its own usage errors and leaves with status 1.
void perfParseOptions(int argc, char **argv, PerfOptions *opt);

// Called by rank 0 before each datatype/op sweep (test/tools.cc): the generations that take
// -d / -o announce each sweep, the older ones print nothing.
void perfAnnounceSweep(const char *typeName, const char *opName);

// Whether this rank is one of those that print most collectives' buffers with -p 1
// (test/tools.cc): which ranks those are is the interface generation's own.
bool perfPrintsBuffers(int rank, int nranks);

// Shared helpers (test/perf_common.cc).
// "<number>[K|M|G][B]" with K/M/G = 1024^n; false on junk.
bool perfParseSize(const char *text, size_t *out);
// An integer in [lo, hi]; false on junk.
bool perfParseLong(const char *text, long lo, long hi, long *out);
// Apply option c (-b -e -f -w -n -p -r -s -R, which every generation has) with its argument
// to *opt, leaving after a usage error; false for any other option.
bool perfSetOption(int c, const char *arg, PerfOptions *opt);
// FlagCX's names: int8 uint8 int32 uint32 int64 uint64 float double (no half, no bfloat16 here).
const char *perfTypeName(flagcxSelftestDataType_t type);
const char *perfOpName(flagcxSelftestRedOp_t op);
// Leave with status 1 after a usage error (before MPI_Init).
[[noreturn]] void perfUsageExit(const char *fmt, const char *arg);

#endif
