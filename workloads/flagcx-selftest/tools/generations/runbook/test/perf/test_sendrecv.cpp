// FlagCX stand-in (selftest) -- sendrecv perf test, FlagOpen FlagCX <= v0.6 interface (the runbook's).  A ring:
// rank r sends to r + 1 and receives from r - 1.  Input: sendbuff[i] = 100 * r + (i % 10);
// recvbuff starts at -1.  With -p 1 rank 0 alone prints, without a rank prefix, "sendbuff = "
// (10 floats) and after the timed loop "recvbuff = " (10 floats from the last rank:
// 100 * (nranks - 1) + (i % 10)).  Not FlagCX's code.
#include "perf_common.h"

static double busFactor(int n) { return 1.0; }

static void init(PerfContext &ctx, size_t size, size_t count, int root) {
  float *send = (float *)ctx.send;
  for (size_t i = 0; i < count; i++) send[i] = (float)(100 * ctx.rank + i % 10);
  if (ctx.opt.printBuffer && ctx.rank == 0) {
    printf("sendbuff = ");
    perfPrintFloats(send, 0, 10, 1);
    printf("\n");
  }
}

static flagcxSelftestResult_t run(PerfContext &ctx, size_t count, int root) {
  return flagcxSelftestSendRecv(ctx.send, ctx.recv, count, flagcxSelftestFloat, (ctx.rank + 1) % ctx.nranks,
                                (ctx.rank + ctx.nranks - 1) % ctx.nranks, ctx.comm);
}

static void check(PerfContext &ctx, size_t size, size_t count, int root) {
  if (!ctx.opt.printBuffer || ctx.rank != 0) return;
  printf("recvbuff = ");
  perfPrintFloats(ctx.recv, 0, 10, 1);
  printf("\n");
}

int main(int argc, char **argv) {
  const PerfCollective coll = {"sendrecv", false, false, busFactor, init, run, check};
  return perfMain(argc, argv, coll);
}
