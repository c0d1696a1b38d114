// Generated from tools/src/test/perf/host_api/test_gather.cpp (v0.13) by tools/export-generation.sh --sync-embedded: edit that file.
// FlagCX stand-in (selftest) -- gather perf test.  Runs once per root.  Input: each rank's
// block (count / nranks elements) is filled with its rank; recvbuff starts at -1.  What -p 1
// prints in each interface generation: README.md, "What every generation prints".
// Not FlagCX's code.
#include "perf_common.h"

static double busFactor(int n) { return (double)(n - 1) / n; }

static void init(PerfContext &ctx, size_t size, size_t count, int root) {
  for (size_t i = 0; i < count / ctx.nranks; i++) perfSetElement(ctx.send, i, ctx.type, ctx.rank);
  if (!ctx.printer) return;
  printf("root rank is %d\n", root);
  printf("sendbuff = %f\n", ((const float *)ctx.send)[0]);
}

static flagcxSelftestResult_t run(PerfContext &ctx, size_t count, int root) {
  return flagcxSelftestGather(ctx.send, ctx.recv, count / ctx.nranks, ctx.type, root, ctx.comm);
}

static void check(PerfContext &ctx, size_t size, size_t count, int root) {
  if (ctx.opt.printBuffer && ctx.rank == root)
    perfPrintBuffer("recvbuff = ", ctx.recv, ctx.nranks, count / ctx.nranks);
}

int main(int argc, char **argv) {
  const PerfCollective coll = {"gather", true, false, busFactor, init, run, check};
  return perfMain(argc, argv, coll);
}
