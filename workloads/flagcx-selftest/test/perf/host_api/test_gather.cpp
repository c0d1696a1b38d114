// FlagCX stand-in (selftest) -- gather perf test, FlagCX v0.9 - v0.13 interface.  Runs once
// per root.  Input: each rank's block (count / nranks floats) is filled with its rank;
// recvbuff starts at -1.  With -p 1 the first and the last rank print, without a rank prefix,
// "root rank is R" and "sendbuff = %f" (their own value); after the timed loop the root alone
// prints "recvbuff = " with the first float of every block (0 1 ... nranks-1).
#include "perf_common.h"

static double busFactor(int n) { return (double)(n - 1) / n; }

static void init(PerfContext &ctx, size_t size, size_t count, int root) {
  float *send = (float *)ctx.send;
  size_t block = count / ctx.nranks;
  for (size_t i = 0; i < block; i++) send[i] = (float)ctx.rank;
  if (ctx.opt.printBuffer && ctx.firstOrLast) {
    printf("root rank is %d\n", root);
    printf("sendbuff = ");
    printf("%f\n", send[0]);
  }
}

static flagcxSelftestResult_t run(PerfContext &ctx, size_t count, int root) {
  return flagcxSelftestGather(ctx.send, ctx.recv, count / ctx.nranks, flagcxSelftestFloat, root, ctx.comm);
}

static void check(PerfContext &ctx, size_t size, size_t count, int root) {
  if (!ctx.opt.printBuffer || ctx.rank != root) return;
  printf("recvbuff = ");
  perfPrintFloats(ctx.recv, 0, ctx.nranks, count / ctx.nranks);
  printf("\n");
}

int main(int argc, char **argv) {
  const PerfCollective coll = {"gather", true, false, busFactor, init, run, check};
  return perfMain(argc, argv, coll);
}
