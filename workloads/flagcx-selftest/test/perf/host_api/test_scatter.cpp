// Generated from tools/src/test/perf/host_api/test_scatter.cpp (v0.13) by tools/export-generation.sh --sync-embedded: edit that file.
// FlagCX stand-in (selftest) -- scatter perf test.  Runs once per root.  Input: block k of
// rank r's sendbuff (count / nranks elements) holds 100 * r + k (only the root's is sent);
// recvbuff starts at -1.  What -p 1 prints in each interface generation: README.md, "What
// every generation prints".  Not FlagCX's code.
#include "perf_common.h"

static double busFactor(int n) { return (double)(n - 1) / n; }

static void init(PerfContext &ctx, size_t size, size_t count, int root) {
  size_t block = count / ctx.nranks;
  for (size_t i = 0; block > 0 && i < block * ctx.nranks; i++)
    perfSetElement(ctx.send, i, ctx.type, (double)(100 * ctx.rank + i / block));
  if (!ctx.printer) return;
  printf("root rank is %d\n", root);
  perfPrintBuffer("sendbuff = ", ctx.send, ctx.nranks, block);
}

static flagcxSelftestResult_t run(PerfContext &ctx, size_t count, int root) {
  return flagcxSelftestScatter(ctx.send, ctx.recv, count / ctx.nranks, ctx.type, root, ctx.comm);
}

static void check(PerfContext &ctx, size_t size, size_t count, int root) {
  if (ctx.printer) printf("recvbuff = %f\n", ((const float *)ctx.recv)[0]);
}

int main(int argc, char **argv) {
  const PerfCollective coll = {"scatter", true, false, busFactor, init, run, check};
  return perfMain(argc, argv, coll);
}
