// FlagCX stand-in (selftest) -- scatter perf test, FlagOpen FlagCX <= v0.6 interface (the runbook's) (the
// stand-in's own output shape).  Runs once per root.  Input: block k of rank r's sendbuff
// (count / nranks floats) holds 100 * r + k (only the root's is sent); recvbuff starts at -1.
// With -p 1 rank 0 prints, without a rank prefix, "root rank is R",
// "sendbuff = " with the first float of every block, and after the timed loop
// "recvbuff = %f" (rank r receives 100 * R + r).  Not FlagCX's code.
#include "perf_common.h"

static double busFactor(int n) { return (double)(n - 1) / n; }

static void init(PerfContext &ctx, size_t size, size_t count, int root) {
  float *send = (float *)ctx.send;
  size_t block = count / ctx.nranks;
  for (size_t i = 0; block > 0 && i < block * ctx.nranks; i++)
    send[i] = (float)(100 * ctx.rank + i / block);
  if (ctx.opt.printBuffer && ctx.rank == 0) {
    printf("root rank is %d\n", root);
    printf("sendbuff = ");
    perfPrintFloats(send, 0, ctx.nranks, block);
    printf("\n");
  }
}

static flagcxSelftestResult_t run(PerfContext &ctx, size_t count, int root) {
  return flagcxSelftestScatter(ctx.send, ctx.recv, count / ctx.nranks, flagcxSelftestFloat, root, ctx.comm);
}

static void check(PerfContext &ctx, size_t size, size_t count, int root) {
  if (!ctx.opt.printBuffer || ctx.rank != 0) return;
  printf("recvbuff = ");
  printf("%f\n", ((const float *)ctx.recv)[0]);
}

int main(int argc, char **argv) {
  const PerfCollective coll = {"scatter", true, false, busFactor, init, run, check};
  return perfMain(argc, argv, coll);
}
