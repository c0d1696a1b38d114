// FlagCX stand-in (selftest) -- the perf-test engine shared by every test_<coll>.cpp.
// Not FlagCX's code: each test_<coll>.cpp says how to fill the buffers, what to print and
// how to call its collective; perfMain() does the rest (MPI, sizes, roots, timing, the
// "Comm size: ..." line on rank 0).
#ifndef SELFTEST_PERF_COMMON_H_
#define SELFTEST_PERF_COMMON_H_

#include <mpi.h>

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flagcx_selftest.h"
#include "tools.h"

struct PerfContext {
  int rank = 0;
  int nranks = 1;
  PerfOptions opt;
  flagcxSelftestComm_t comm = nullptr;
  void *send = nullptr;  // host buffers, allocBytes each
  void *recv = nullptr;
  size_t allocBytes = 0;
  flagcxSelftestDataType_t type = flagcxSelftestFloat;
  flagcxSelftestRedOp_t op = flagcxSelftestSum;
  bool printer = false;  // -p 1 and perfPrintsBuffers(rank): this rank prints most buffers
};

struct PerfCollective {
  const char *name;
  bool rooted;   // run once per root (-r R, or every rank in turn with -r -1)
  bool reduces;  // takes a reduction op (swept with -o all)
  double (*busFactor)(int nranks);
  // Fill the input (sendbuff starts as 0, recvbuff as -1) and print what is printed before
  // the timed loop.  root is -1 for the collectives without one.
  void (*init)(PerfContext &ctx, size_t size, size_t count, int root);
  flagcxSelftestResult_t (*run)(PerfContext &ctx, size_t count, int root);
  // Print what is printed after it (the result of the last iteration is in recvbuff).
  void (*check)(PerfContext &ctx, size_t size, size_t count, int root);
};

int perfMain(int argc, char **argv, const PerfCollective &coll);

// Print n floats of buf, from element `first`, every `stride`-th, as "%f " each.
void perfPrintFloats(const void *buf, size_t first, size_t n, size_t stride);
// A line: label, then n floats of buf from element 0, every `stride`-th ("%f " each).
void perfPrintBuffer(const char *label, const void *buf, size_t n, size_t stride);
// buf[i] = v converted to datatype (integers wrap like a cast).
void perfSetElement(void *buf, size_t i, flagcxSelftestDataType_t type, double v);

#endif
