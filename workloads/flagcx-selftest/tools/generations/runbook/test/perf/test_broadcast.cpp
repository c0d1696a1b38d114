// FlagCX stand-in (selftest) -- broadcast perf test, FlagOpen FlagCX <= v0.6 interface (the runbook's).
// Runs once per root (-r R, or every rank in turn).  Input: every rank fills its sendbuff
// with its rank; recvbuff starts at -1.  With -p 1 rank 0 prints, per
// root and without a rank prefix, "root rank is R", "sendbuff = " (10 floats, their own rank)
// and after the timed loop "recvbuff = " (10 floats, all R).  Not FlagCX's code.
#include "perf_common.h"

static double busFactor(int n) { return 1.0; }

static void init(PerfContext &ctx, size_t size, size_t count, int root) {
  float *send = (float *)ctx.send;
  for (size_t i = 0; i < count; i++) send[i] = (float)ctx.rank;
  if (ctx.opt.printBuffer && ctx.rank == 0) {
    printf("root rank is %d\n", root);
    printf("sendbuff = ");
    perfPrintFloats(send, 0, 10, 1);
    printf("\n");
  }
}

static flagcxSelftestResult_t run(PerfContext &ctx, size_t count, int root) {
  return flagcxSelftestBroadcast(ctx.send, ctx.recv, count, flagcxSelftestFloat, root, ctx.comm);
}

static void check(PerfContext &ctx, size_t size, size_t count, int root) {
  if (!ctx.opt.printBuffer || ctx.rank != 0) return;
  printf("recvbuff = ");
  perfPrintFloats(ctx.recv, 0, 10, 1);
  printf("\n");
}

int main(int argc, char **argv) {
  const PerfCollective coll = {"broadcast", true, false, busFactor, init, run, check};
  return perfMain(argc, argv, coll);
}
