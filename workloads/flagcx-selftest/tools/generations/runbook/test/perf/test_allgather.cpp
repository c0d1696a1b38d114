// FlagCX stand-in (selftest) -- allgather perf test, FlagOpen FlagCX <= v0.6 interface (the runbook's).
// Input: each rank's block (count / nranks floats) is filled with its rank; recvbuff starts
// at -1, which no rank sends.  With -p 1 rank 0 prints, without a rank
// prefix, "sendbuff = %f" (their own value) before the timed loop and "recvbuff = " with the
// first float of every block (nranks floats: 0 1 ... nranks-1) after it.  Not FlagCX's code.
#include "perf_common.h"

static double busFactor(int n) { return (double)(n - 1) / n; }

static void init(PerfContext &ctx, size_t size, size_t count, int root) {
  float *send = (float *)ctx.send;
  size_t block = count / ctx.nranks;
  for (size_t i = 0; i < block; i++) send[i] = (float)ctx.rank;
  if (ctx.opt.printBuffer && ctx.rank == 0) {
    printf("sendbuff = ");
    printf("%f\n", send[0]);
  }
}

static flagcxSelftestResult_t run(PerfContext &ctx, size_t count, int root) {
  return flagcxSelftestAllGather(ctx.send, ctx.recv, count / ctx.nranks, flagcxSelftestFloat, ctx.comm);
}

static void check(PerfContext &ctx, size_t size, size_t count, int root) {
  if (!ctx.opt.printBuffer || ctx.rank != 0) return;
  printf("recvbuff = ");
  perfPrintFloats(ctx.recv, 0, ctx.nranks, count / ctx.nranks);
  printf("\n");
}

int main(int argc, char **argv) {
  const PerfCollective coll = {"allgather", false, false, busFactor, init, run, check};
  return perfMain(argc, argv, coll);
}
