// FlagCX stand-in (selftest) -- alltoall perf test, FlagOpen FlagCX <= v0.6 interface (the runbook's).
// Input: the block rank r sends to rank k (count / nranks floats) holds 100 * r + k; recvbuff
// starts at -1.  With -p 1 rank 0 prints, without a rank prefix,
// "sendbuff = " and after the timed loop "recvbuff = ", each with the first float of every
// block (nranks floats; rank r receives 100 * k + r from rank k).  Not FlagCX's code.
#include "perf_common.h"

static double busFactor(int n) { return (double)(n - 1) / n; }

static void init(PerfContext &ctx, size_t size, size_t count, int root) {
  float *send = (float *)ctx.send;
  size_t block = count / ctx.nranks;
  for (size_t i = 0; block > 0 && i < block * ctx.nranks; i++)
    send[i] = (float)(100 * ctx.rank + i / block);
  if (ctx.opt.printBuffer && ctx.rank == 0) {
    printf("sendbuff = ");
    perfPrintFloats(send, 0, ctx.nranks, block);
    printf("\n");
  }
}

static flagcxSelftestResult_t run(PerfContext &ctx, size_t count, int root) {
  return flagcxSelftestAlltoAll(ctx.send, ctx.recv, count / ctx.nranks, flagcxSelftestFloat, ctx.comm);
}

static void check(PerfContext &ctx, size_t size, size_t count, int root) {
  if (!ctx.opt.printBuffer || ctx.rank != 0) return;
  printf("recvbuff = ");
  perfPrintFloats(ctx.recv, 0, ctx.nranks, count / ctx.nranks);
  printf("\n");
}

int main(int argc, char **argv) {
  const PerfCollective coll = {"alltoall", false, false, busFactor, init, run, check};
  return perfMain(argc, argv, coll);
}
