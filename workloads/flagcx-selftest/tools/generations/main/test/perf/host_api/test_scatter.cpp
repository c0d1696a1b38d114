// FlagCX stand-in (selftest) -- scatter perf test, FlagCX interface after v0.13: sweeps
// every datatype of -d (default float / sum), announcing each sweep; -p 1 prints no buffers and no
// verdict, as in FlagCX (only the unit tests say whether results are right).
// Input: block k of sendbuff holds 100 * rank + k; recvbuff starts at -1.  Not FlagCX's code.
#include "perf_common.h"

static double busFactor(int n) { return (double)(n - 1) / n; }

static void init(PerfContext &ctx, size_t size, size_t count, int root) {
  size_t block = count / ctx.nranks;
  for (size_t i = 0; block > 0 && i < block * ctx.nranks; i++) perfSetElement(ctx.send, i, ctx.type, (double)(100 * ctx.rank + i / block));
}

static flagcxSelftestResult_t run(PerfContext &ctx, size_t count, int root) {
  return flagcxSelftestScatter(ctx.send, ctx.recv, count / ctx.nranks, ctx.type, root, ctx.comm);
}

static void check(PerfContext &ctx, size_t size, size_t count, int root) {}

int main(int argc, char **argv) {
  const PerfCollective coll = {"scatter", true, false, busFactor, init, run, check};
  return perfMain(argc, argv, coll);
}
