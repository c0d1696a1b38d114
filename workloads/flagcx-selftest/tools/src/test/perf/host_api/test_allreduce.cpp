// FlagCX stand-in (selftest) -- allreduce perf test.
#if CCTL_GEN_RUNBOOK
// Input: sendbuff[i] = i % 10 on every rank; recvbuff starts at -1.
#elif CCTL_GEN_MAIN
// Input: sendbuff[i] = (i % 10) * 2^(rank % 30) in the sweep's datatype (recvbuff starts as a
// copy).
#else
// Input: sendbuff[i] = (i % 10) * 2^rank on every rank (recvbuff starts as a copy of it).
#include <math.h>
#endif
// What -p 1 prints in each interface generation: README.md, "What every generation prints".
// Not FlagCX's code.
#include "perf_common.h"

static double busFactor(int n) { return 2.0 * (n - 1) / n; }

static void init(PerfContext &ctx, size_t size, size_t count, int root) {
#if CCTL_GEN_MAIN
  for (size_t i = 0; i < count; i++)
    perfSetElement(ctx.send, i, ctx.type, (double)(i % 10) * (double)(1ULL << (ctx.rank % 30)));
  memcpy(ctx.recv, ctx.send, size);
#elif CCTL_GEN_RUNBOOK
  for (size_t i = 0; i < count; i++) perfSetElement(ctx.send, i, ctx.type, (double)(i % 10));
  if (ctx.printer) perfPrintBuffer("sendbuff = ", ctx.send, 10, 1);
#else
  float *send = (float *)ctx.send;
  for (size_t i = 0; i < count; i++) send[i] = (float)((i % 10) * ldexp(1.0, ctx.rank));
  memcpy(ctx.recv, ctx.send, count * sizeof(float));
  if (ctx.opt.printBuffer) {  // every rank
    printf("rank %d sendbuff = ", ctx.rank);
    perfPrintFloats(send, 0, 10, 1);
    printf("\n");
  }
#endif
}

static flagcxSelftestResult_t run(PerfContext &ctx, size_t count, int root) {
  return flagcxSelftestAllReduce(ctx.send, ctx.recv, count, ctx.type, ctx.op, ctx.comm);
}

static void check(PerfContext &ctx, size_t size, size_t count, int root) {
#if CCTL_GEN_RUNBOOK
  // No verdict line: the buffers are the only sign of a right or wrong result.
  if (ctx.printer) perfPrintBuffer("recvbuff = ", ctx.recv, 10, 1);
#elif !CCTL_GEN_MAIN
  // Every rank prints its buffer and its own verdict over the whole of it (sum:
  // (i % 10) * (2^nranks - 1)), after the first wrong element if there is one.
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
#endif
}

int main(int argc, char **argv) {
  const PerfCollective coll = {"allreduce", false, true, busFactor, init, run, check};
  return perfMain(argc, argv, coll);
}
