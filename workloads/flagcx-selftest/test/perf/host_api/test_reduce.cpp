// Generated from tools/src/test/perf/host_api/test_reduce.cpp (v0.13) by tools/export-generation.sh --sync-embedded: edit that file.
// FlagCX stand-in (selftest) -- reduce perf test.  Runs once per root.
// Input: sendbuff[i] = (r + 1) * (i % 10) on rank r; recvbuff starts at -1.
// What -p 1 prints in each interface generation: README.md, "What every generation prints".
// Not FlagCX's code.
#include "perf_common.h"

static double busFactor(int n) { return 1.0; }

static void init(PerfContext &ctx, size_t size, size_t count, int root) {
  for (size_t i = 0; i < count; i++) perfSetElement(ctx.send, i, ctx.type, (double)((ctx.rank + 1) * (i % 10)));
  if (!ctx.printer) return;
  printf("root rank is %d\n", root);
  perfPrintBuffer("sendbuff = ", ctx.send, 10, 1);
}

static flagcxSelftestResult_t run(PerfContext &ctx, size_t count, int root) {
  return flagcxSelftestReduce(ctx.send, ctx.recv, count, ctx.type, ctx.op, root, ctx.comm);
}

static void check(PerfContext &ctx, size_t size, size_t count, int root) {
  if (ctx.opt.printBuffer && ctx.rank == root) perfPrintBuffer("recvbuff = ", ctx.recv, 10, 1);
}

int main(int argc, char **argv) {
  const PerfCollective coll = {"reduce", true, true, busFactor, init, run, check};
  return perfMain(argc, argv, coll);
}
