// FlagCX stand-in (selftest) -- allreduce perf test, FlagOpen FlagCX <= v0.6 interface (the
// runbook's).  Input: sendbuff[i] = i % 10 on every rank; recvbuff starts at -1.  With -p 1
// rank 0 alone prints, without a rank prefix, "sendbuff = " (10 floats) before the timed loop
// and "recvbuff = " (10 floats: (i % 10) * nranks) after it.  No verdict line: the buffers
// are the only sign of a right or wrong result.  Not FlagCX's code.
#include "perf_common.h"

static double busFactor(int n) { return 2.0 * (n - 1) / n; }

static void init(PerfContext &ctx, size_t size, size_t count, int root) {
  float *send = (float *)ctx.send;
  for (size_t i = 0; i < count; i++) send[i] = (float)(i % 10);
  if (ctx.opt.printBuffer && ctx.rank == 0) {
    printf("sendbuff = ");
    perfPrintFloats(send, 0, 10, 1);
    printf("\n");
  }
}

static flagcxSelftestResult_t run(PerfContext &ctx, size_t count, int root) {
  return flagcxSelftestAllReduce(ctx.send, ctx.recv, count, flagcxSelftestFloat, flagcxSelftestSum,
                                 ctx.comm);
}

static void check(PerfContext &ctx, size_t size, size_t count, int root) {
  if (!ctx.opt.printBuffer || ctx.rank != 0) return;
  printf("recvbuff = ");
  perfPrintFloats(ctx.recv, 0, 10, 1);
  printf("\n");
}

int main(int argc, char **argv) {
  const PerfCollective coll = {"allreduce", false, true, busFactor, init, run, check};
  return perfMain(argc, argv, coll);
}
