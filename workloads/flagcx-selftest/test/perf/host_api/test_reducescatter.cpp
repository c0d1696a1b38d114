// Generated from tools/src/test/perf/host_api/test_reducescatter.cpp (v0.13) by tools/export-generation.sh --sync-embedded: edit that file.
// FlagCX stand-in (selftest) -- reducescatter perf test.
// Input: block b of rank r (count / nranks floats each) holds (r + 1) * (j % 10) at offset j;
// recvbuff starts at -1.
// What -p 1 prints in each interface generation: README.md, "What every generation prints".
// Not FlagCX's code.
#include "perf_common.h"

static double busFactor(int n) { return (double)(n - 1) / n; }

static void init(PerfContext &ctx, size_t size, size_t count, int root) {
  size_t block = count / ctx.nranks;
  for (size_t i = 0; block > 0 && i < block * ctx.nranks; i++)
    perfSetElement(ctx.send, i, ctx.type, (double)((ctx.rank + 1) * ((i % block) % 10)));
  if (ctx.printer) perfPrintBuffer("sendbuff = ", ctx.send, 10, 1);
}

static flagcxSelftestResult_t run(PerfContext &ctx, size_t count, int root) {
  return flagcxSelftestReduceScatter(ctx.send, ctx.recv, count / ctx.nranks, ctx.type, ctx.op, ctx.comm);
}

static void check(PerfContext &ctx, size_t size, size_t count, int root) {
  if (ctx.printer) perfPrintBuffer("recvbuff = ", ctx.recv, 10, 1);
}

int main(int argc, char **argv) {
  const PerfCollective coll = {"reducescatter", false, true, busFactor, init, run, check};
  return perfMain(argc, argv, coll);
}
