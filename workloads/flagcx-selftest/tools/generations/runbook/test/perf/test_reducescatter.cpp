// FlagCX stand-in (selftest) -- reducescatter perf test, FlagOpen FlagCX <= v0.6 interface (the runbook's)
// (the stand-in's own output shape).  Input: block b of rank r (count / nranks floats each)
// holds (r + 1) * (j % 10) at offset j; recvbuff starts at -1.  With -p 1 rank 0 prints,
// without a rank prefix, "sendbuff = " (first 10 floats) and after the timed loop
// "recvbuff = " (first 10 floats of its block: (j % 10) * nranks * (nranks + 1) / 2).
#include "perf_common.h"

static double busFactor(int n) { return (double)(n - 1) / n; }

static void init(PerfContext &ctx, size_t size, size_t count, int root) {
  float *send = (float *)ctx.send;
  size_t block = count / ctx.nranks;
  for (size_t i = 0; block > 0 && i < block * ctx.nranks; i++)
    send[i] = (float)((ctx.rank + 1) * ((i % block) % 10));
  if (ctx.opt.printBuffer && ctx.rank == 0) {
    printf("sendbuff = ");
    perfPrintFloats(send, 0, 10, 1);
    printf("\n");
  }
}

static flagcxSelftestResult_t run(PerfContext &ctx, size_t count, int root) {
  return flagcxSelftestReduceScatter(ctx.send, ctx.recv, count / ctx.nranks, flagcxSelftestFloat,
                                     flagcxSelftestSum, ctx.comm);
}

static void check(PerfContext &ctx, size_t size, size_t count, int root) {
  if (!ctx.opt.printBuffer || ctx.rank != 0) return;
  printf("recvbuff = ");
  perfPrintFloats(ctx.recv, 0, 10, 1);
  printf("\n");
}

int main(int argc, char **argv) {
  const PerfCollective coll = {"reducescatter", false, true, busFactor, init, run, check};
  return perfMain(argc, argv, coll);
}
