// FlagCX stand-in (selftest) -- reduce perf test, FlagOpen FlagCX <= v0.6 interface (the runbook's) (the
// stand-in's own output shape).  Runs once per root.  Input: sendbuff[i] = (r + 1) * (i % 10)
// on rank r; recvbuff starts at -1.  With -p 1 rank 0 prints, without a
// rank prefix, "root rank is R" and "sendbuff = " (10 floats); after the timed loop the root
// alone prints "recvbuff = " (10 floats: (i % 10) * nranks * (nranks + 1) / 2).
#include "perf_common.h"

static double busFactor(int n) { return 1.0; }

static void init(PerfContext &ctx, size_t size, size_t count, int root) {
  float *send = (float *)ctx.send;
  for (size_t i = 0; i < count; i++) send[i] = (float)((ctx.rank + 1) * (i % 10));
  if (ctx.opt.printBuffer && ctx.rank == 0) {
    printf("root rank is %d\n", root);
    printf("sendbuff = ");
    perfPrintFloats(send, 0, 10, 1);
    printf("\n");
  }
}

static flagcxSelftestResult_t run(PerfContext &ctx, size_t count, int root) {
  return flagcxSelftestReduce(ctx.send, ctx.recv, count, flagcxSelftestFloat, flagcxSelftestSum, root,
                              ctx.comm);
}

static void check(PerfContext &ctx, size_t size, size_t count, int root) {
  if (!ctx.opt.printBuffer || ctx.rank != root) return;
  printf("recvbuff = ");
  perfPrintFloats(ctx.recv, 0, 10, 1);
  printf("\n");
}

int main(int argc, char **argv) {
  const PerfCollective coll = {"reduce", true, true, busFactor, init, run, check};
  return perfMain(argc, argv, coll);
}
