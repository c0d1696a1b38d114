// FlagCX stand-in (selftest) -- gather perf test, FlagCX interface after v0.13: sweeps
// every datatype of -d (default float / sum), announcing each sweep; -p 1 prints no buffers and no
// verdict, as in FlagCX (only the unit tests say whether results are right).
// Input: each rank's block is filled with its rank; recvbuff starts at -1.  Not FlagCX's code.
#include "perf_common.h"

static double busFactor(int n) { return (double)(n - 1) / n; }

static void init(PerfContext &ctx, size_t size, size_t count, int root) {
  for (size_t i = 0; i < count / ctx.nranks; i++) perfSetElement(ctx.send, i, ctx.type, ctx.rank);
}

static flagcxSelftestResult_t run(PerfContext &ctx, size_t count, int root) {
  return flagcxSelftestGather(ctx.send, ctx.recv, count / ctx.nranks, ctx.type, root, ctx.comm);
}

static void check(PerfContext &ctx, size_t size, size_t count, int root) {}

int main(int argc, char **argv) {
  const PerfCollective coll = {"gather", true, false, busFactor, init, run, check};
  return perfMain(argc, argv, coll);
}
