// FlagCX stand-in (selftest) -- alltoall perf test.  Input: the block rank r sends to rank k
// (count / nranks elements) holds 100 * r + k; recvbuff starts at -1.  What -p 1 prints in each
// interface generation: README.md, "What every generation prints".  Not FlagCX's code.
#include "perf_common.h"

static double busFactor(int n) { return (double)(n - 1) / n; }

static void init(PerfContext &ctx, size_t size, size_t count, int root) {
  size_t block = count / ctx.nranks;
  for (size_t i = 0; block > 0 && i < block * ctx.nranks; i++)
    perfSetElement(ctx.send, i, ctx.type, (double)(100 * ctx.rank + i / block));
#if !CCTL_GEN_MAIN
  if (ctx.printer) perfPrintBuffer("sendbuff = ", ctx.send, ctx.nranks, block);
#endif
}

static flagcxSelftestResult_t run(PerfContext &ctx, size_t count, int root) {
  return flagcxSelftestAlltoAll(ctx.send, ctx.recv, count / ctx.nranks, ctx.type, ctx.comm);
}

static void check(PerfContext &ctx, size_t size, size_t count, int root) {
#if !CCTL_GEN_MAIN
  if (ctx.printer) perfPrintBuffer("recvbuff = ", ctx.recv, ctx.nranks, count / ctx.nranks);
#endif
}

int main(int argc, char **argv) {
  const PerfCollective coll = {"alltoall", false, false, busFactor, init, run, check};
  return perfMain(argc, argv, coll);
}
