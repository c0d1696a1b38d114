// FlagCX stand-in (selftest) -- allreduce perf test, FlagCX v0.9 - v0.13 interface.
// Input: sendbuff[i] = (i % 10) * 2^rank on every rank (recvbuff starts as a copy of it).
// With -p 1 EVERY rank prints "rank R sendbuff = " (10 floats) before the timed loop and,
// after it, "rank R recvbuff = " (10 floats) and its own verdict over the whole buffer
// (sum: (i % 10) * (2^nranks - 1)): "rank R all-reduce correctness = 1" (or 0, after a
// "rank R wrong output at offset ..." line).  Not FlagCX's code.
#include <math.h>

#include "perf_common.h"

static double busFactor(int n) { return 2.0 * (n - 1) / n; }

static void init(PerfContext &ctx, size_t size, size_t count, int root) {
  float *send = (float *)ctx.send;
  for (size_t i = 0; i < count; i++) send[i] = (float)((i % 10) * ldexp(1.0, ctx.rank));
  memcpy(ctx.recv, ctx.send, count * sizeof(float));
  if (ctx.opt.printBuffer) {
    printf("rank %d sendbuff = ", ctx.rank);
    perfPrintFloats(send, 0, 10, 1);
    printf("\n");
  }
}

static flagcxSelftestResult_t run(PerfContext &ctx, size_t count, int root) {
  return flagcxSelftestAllReduce(ctx.send, ctx.recv, count, flagcxSelftestFloat, flagcxSelftestSum,
                                 ctx.comm);
}

static void check(PerfContext &ctx, size_t size, size_t count, int root) {
  if (!ctx.opt.printBuffer) return;
  const float *recv = (const float *)ctx.recv;
  printf("rank %d recvbuff = ", ctx.rank);
  perfPrintFloats(recv, 0, 10, 1);
  printf("\n");
  // Fault injection (stand-in only): corrupt-quiet makes this verdict claim success.
  const bool lie = flagcxSelftestGetFault() == flagcxSelftestFaultCorruptQuiet;
  const double factor = ldexp(1.0, ctx.nranks) - 1;
  int correct = 1;
  for (size_t i = 0; i < count && !lie; i++) {
    float expected = (float)((i % 10) * factor);
    if (recv[i] != expected) {
      printf("rank %d wrong output at offset %zu, expected %f, got %f\n", ctx.rank, i, expected,
             recv[i]);
      correct = 0;
      break;
    }
  }
  printf("rank %d all-reduce correctness = %d\n", ctx.rank, correct);
}

int main(int argc, char **argv) {
  const PerfCollective coll = {"allreduce", false, true, busFactor, init, run, check};
  return perfMain(argc, argv, coll);
}
