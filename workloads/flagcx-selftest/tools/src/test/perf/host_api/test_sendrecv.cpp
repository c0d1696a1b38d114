// FlagCX stand-in (selftest) -- sendrecv perf test.  A ring: rank r sends to r + 1 and receives
// from r - 1.  Input: sendbuff[i] = 100 * r + (i % 10); recvbuff starts at -1.  What -p 1
// prints in each interface generation: README.md, "What every generation prints".
// Not FlagCX's code.
#include "perf_common.h"

static double busFactor(int n) { return 1.0; }

static void init(PerfContext &ctx, size_t size, size_t count, int root) {
  for (size_t i = 0; i < count; i++) perfSetElement(ctx.send, i, ctx.type, (double)(100 * ctx.rank + i % 10));
#if !CCTL_GEN_MAIN
  if (ctx.opt.printBuffer && ctx.rank == 0) perfPrintBuffer("sendbuff = ", ctx.send, 10, 1);
#endif
}

static flagcxSelftestResult_t run(PerfContext &ctx, size_t count, int root) {
  return flagcxSelftestSendRecv(ctx.send, ctx.recv, count, ctx.type, (ctx.rank + 1) % ctx.nranks,
                                (ctx.rank + ctx.nranks - 1) % ctx.nranks, ctx.comm);
}

static void check(PerfContext &ctx, size_t size, size_t count, int root) {
#if !CCTL_GEN_MAIN
  if (ctx.opt.printBuffer && ctx.rank == 0) perfPrintBuffer("recvbuff = ", ctx.recv, 10, 1);
#endif
}

int main(int argc, char **argv) {
  const PerfCollective coll = {"sendrecv", false, false, busFactor, init, run, check};
  return perfMain(argc, argv, coll);
}
