// FlagCX stand-in (selftest) -- perf test driver, one source for every collective.
//
// Built once per collective with -DSELFTEST_COLL="<name>" (test/perf/Makefile makes
// test_<name>, test/perf/host_api/Makefile makes build/bin/perf_<name>).  It is not
// FlagCX's test code: it takes FlagCX's perf-test options and prints FlagCX's result
// line so that containerctl's parser and checker can be exercised without a device.
//
// Per size, rank 0 prints (with -p 1 the two buffer lines around the result line):
//   sendbuff = <first 10 floats>
//   Comm size: %zu bytes; Elapsed time: %lf sec; Algo bandwidth: %lf GB/s; Bus bandwidth: %lf GB/s
//   recvbuff = <first 10 floats>
// Input element i is (float)(i % 10) on every rank.

#include <mpi.h>

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <string>
#include <vector>

#include "flagcx_selftest.h"

#ifndef SELFTEST_COLL
#error "compile with -DSELFTEST_COLL=\"allreduce\" (or another collective name)"
#endif

namespace {

enum Coll {
  kAllReduce,
  kAllGather,
  kReduceScatter,
  kAlltoAll,
  kBroadcast,
  kReduce,
  kSendRecv,
  kGather,
  kScatter,
  kUnknown
};

struct CollInfo {
  const char *name;
  Coll coll;
  bool rooted;
};

const CollInfo kColls[] = {
    {"allreduce", kAllReduce, false}, {"allgather", kAllGather, false},
    {"reducescatter", kReduceScatter, false}, {"alltoall", kAlltoAll, false},
    {"broadcast", kBroadcast, true}, {"reduce", kReduce, true},
    {"sendrecv", kSendRecv, false}, {"gather", kGather, true},
    {"scatter", kScatter, true},
};

struct Options {
  size_t minBytes = (size_t)1 << 20;
  size_t maxBytes = (size_t)1 << 30;
  size_t stepFactor = 2;
  int warmupIters = 5;
  int iters = 20;
  int printBuffer = 0;
  int root = -1; // -1: every rank takes a turn as root, results averaged
  int splitMask = 0;
  int localRegister = 0;
};

int gRank = 0;

// Report a usage error once (rank 0) and make every rank leave with status 1.
[[noreturn]] void usageError(const char *fmt, const char *arg) {
  if (gRank == 0) {
    fprintf(stderr, "%s: ", SELFTEST_COLL);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    fflush(stderr);
  }
  MPI_Finalize();
  exit(1);
}

// "<number>[K|M|G]" with K/M/G = 1024^n; returns false on junk or overflow.
bool parseSize(const char *text, size_t *out) {
  char *end = NULL;
  double value = strtod(text, &end);
  if (end == text || value < 0) return false;
  double unit = 1;
  if (*end != '\0') {
    switch (*end) {
    case 'K': case 'k': unit = 1024.0; break;
    case 'M': case 'm': unit = 1024.0 * 1024.0; break;
    case 'G': case 'g': unit = 1024.0 * 1024.0 * 1024.0; break;
    default: return false;
    }
    if (end[1] != '\0' && !((end[1] == 'B' || end[1] == 'b') && end[2] == '\0')) return false;
  }
  double bytes = value * unit;
  if (bytes >= 18446744073709551615.0) return false;
  *out = (size_t)bytes;
  return true;
}

bool parseInt(const char *text, long lo, long hi, long *out) {
  char *end = NULL;
  long v = strtol(text, &end, 0);
  if (end == text || *end != '\0' || v < lo || v > hi) return false;
  *out = v;
  return true;
}

void printUsage(const char *prog) {
  printf("FlagCX stand-in (selftest) perf test: %s\n"
         "  -b <minbytes K/M/G>  (default 1M)\n"
         "  -e <maxbytes K/M/G>  (default 1G)\n"
         "  -f <stepfactor>      (default 2)\n"
         "  -w <warmup iters>    (default 5)\n"
         "  -n <iters>           (default 20)\n"
         "  -p <print buffer 0/1> (default 0)\n"
         "  -r <root>            (default -1: every rank in turn)\n"
         "  -d <datatype>        (float only)\n"
         "  -o <op>              (sum only)\n"
         "  -s <split mask>      (0 only)  -R <local register 0/1> (accepted, no effect)\n",
         prog);
}

Options parseOptions(int argc, char **argv) {
  Options o;
  static struct option longOpts[] = {
      {"minbytes", required_argument, 0, 'b'},   {"maxbytes", required_argument, 0, 'e'},
      {"stepfactor", required_argument, 0, 'f'}, {"warmup_iters", required_argument, 0, 'w'},
      {"iters", required_argument, 0, 'n'},      {"print_buffer", required_argument, 0, 'p'},
      {"root", required_argument, 0, 'r'},       {"datatype", required_argument, 0, 'd'},
      {"op", required_argument, 0, 'o'},        {"split_mask", required_argument, 0, 's'},
      {"local_register", required_argument, 0, 'R'}, {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  opterr = 0;
  long v = 0;
  int c;
  while ((c = getopt_long(argc, argv, "b:e:f:w:n:p:r:d:o:s:R:h", longOpts, NULL)) != -1) {
    switch (c) {
    case 'b':
      if (!parseSize(optarg, &o.minBytes)) usageError("invalid minbytes value '%s'", optarg);
      break;
    case 'e':
      if (!parseSize(optarg, &o.maxBytes)) usageError("invalid maxbytes value '%s'", optarg);
      break;
    case 'f':
      if (!parseInt(optarg, 2, 1L << 30, &v))
        usageError("invalid stepfactor value '%s' (must be an integer >= 2)", optarg);
      o.stepFactor = (size_t)v;
      break;
    case 'w':
      if (!parseInt(optarg, 0, 1L << 30, &v)) usageError("invalid warmup iters value '%s'", optarg);
      o.warmupIters = (int)v;
      break;
    case 'n':
      if (!parseInt(optarg, 1, 1L << 30, &v))
        usageError("invalid iters value '%s' (must be >= 1)", optarg);
      o.iters = (int)v;
      break;
    case 'p':
      if (!parseInt(optarg, 0, 1, &v)) usageError("invalid print_buffer value '%s' (0 or 1)", optarg);
      o.printBuffer = (int)v;
      break;
    case 'r':
      if (!parseInt(optarg, -1, 1L << 30, &v)) usageError("invalid root value '%s'", optarg);
      o.root = (int)v;
      break;
    case 'd':
      if (strcasecmp(optarg, "float") != 0 && strcasecmp(optarg, "float32") != 0 &&
          strcasecmp(optarg, "fp32") != 0 && strcasecmp(optarg, "f32") != 0)
        usageError("unsupported datatype '%s': the FlagCX stand-in (selftest) supports only float",
                   optarg);
      break;
    case 'o':
      if (strcasecmp(optarg, "sum") != 0)
        usageError("unsupported op '%s': the FlagCX stand-in (selftest) supports only sum", optarg);
      break;
    case 's':
      if (!parseInt(optarg, 0, 0, &v))
        usageError("split mask '%s' is not supported by the FlagCX stand-in (selftest); use 0",
                   optarg);
      break;
    case 'R':
      if (!parseInt(optarg, 0, 1, &v)) usageError("invalid local_register value '%s' (0 or 1)", optarg);
      o.localRegister = (int)v;
      break;
    case 'h':
      if (gRank == 0) printUsage(argv[0]);
      MPI_Finalize();
      exit(0);
    default: {
      char opt[3] = {'-', (char)optopt, '\0'};
      usageError("invalid or incomplete option '%s' (see -h)", optopt ? opt : argv[optind - 1]);
    }
    }
  }
  if (optind < argc) usageError("unexpected argument '%s'", argv[optind]);
  if (o.minBytes == 0) usageError("minbytes must be at least 1 byte (got '%s')", "0");
  if (o.minBytes > o.maxBytes) usageError("minbytes is larger than maxbytes%s", "");
  return o;
}

const CollInfo *findColl(const char *name) {
  for (size_t i = 0; i < sizeof(kColls) / sizeof(kColls[0]); i++)
    if (strcmp(kColls[i].name, name) == 0) return &kColls[i];
  return NULL;
}

// Busbw = algbw * factor, as nccl-tests and FlagCX define it.
double busFactor(Coll coll, int n) {
  switch (coll) {
  case kAllReduce:
    return 2.0 * (n - 1) / n;
  case kAllGather:
  case kReduceScatter:
  case kAlltoAll:
  case kGather:
  case kScatter:
    return (double)(n - 1) / n;
  default:
    return 1.0;
  }
}

void check(flagcxSelftestResult_t res, const char *what) {
  if (res == flagcxSelftestSuccess) return;
  fprintf(stderr, "rank %d: %s failed: %s\n", gRank, what, flagcxSelftestGetErrorString(res));
  fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
}

// Element counts for one size: "count" is size/sizeof(float); collectives that split
// the buffer across ranks use count/nranks per rank (rounded down).
struct Counts {
  size_t count;   // whole buffer
  size_t block;   // per-rank block for the split collectives
  size_t sendN;   // valid elements in sendbuff
  size_t recvN;   // valid elements in recvbuff (on rank 0)
};

Counts countsFor(Coll coll, size_t size, int nranks, int rank, int root) {
  Counts c;
  c.count = size / sizeof(float);
  c.block = c.count / (size_t)nranks;
  c.sendN = c.recvN = c.count;
  switch (coll) {
  case kAllGather: c.sendN = c.block; c.recvN = c.block * nranks; break;
  case kReduceScatter: c.sendN = c.block * nranks; c.recvN = c.block; break;
  case kAlltoAll: c.sendN = c.recvN = c.block * nranks; break;
  case kGather: c.sendN = c.block; c.recvN = rank == root ? c.block * nranks : 0; break;
  case kScatter: c.sendN = rank == root ? c.block * nranks : 0; c.recvN = c.block; break;
  case kReduce: c.recvN = rank == root ? c.count : 0; break;
  default: break;
  }
  return c;
}

void runOnce(Coll coll, const Counts &c, const float *send, float *recv, int root, int rank,
             int nranks, flagcxSelftestComm_t comm) {
  const flagcxSelftestDataType_t f = flagcxSelftestFloat;
  const flagcxSelftestRedOp_t sum = flagcxSelftestSum;
  switch (coll) {
  case kAllReduce: check(flagcxSelftestAllReduce(send, recv, c.count, f, sum, comm), "allreduce"); break;
  case kAllGather: check(flagcxSelftestAllGather(send, recv, c.block, f, comm), "allgather"); break;
  case kReduceScatter:
    check(flagcxSelftestReduceScatter(send, recv, c.block, f, sum, comm), "reducescatter");
    break;
  case kAlltoAll: check(flagcxSelftestAlltoAll(send, recv, c.block, f, comm), "alltoall"); break;
  case kBroadcast: check(flagcxSelftestBroadcast(send, recv, c.count, f, root, comm), "broadcast"); break;
  case kReduce: check(flagcxSelftestReduce(send, recv, c.count, f, sum, root, comm), "reduce"); break;
  case kGather: check(flagcxSelftestGather(send, recv, c.block, f, root, comm), "gather"); break;
  case kScatter: check(flagcxSelftestScatter(send, recv, c.block, f, root, comm), "scatter"); break;
  case kSendRecv:
    check(flagcxSelftestSendRecv(send, recv, c.count, f, (rank + 1) % nranks,
                                 (rank + nranks - 1) % nranks, comm),
          "sendrecv");
    break;
  default: break;
  }
}

void printBuf(const char *label, const float *buf, size_t n) {
  printf("%s = ", label);
  for (size_t i = 0; i < n && i < 10; i++) printf("%f ", buf[i]);
  printf("\n");
}

} // namespace

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int nranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &gRank);
  MPI_Comm_size(MPI_COMM_WORLD, &nranks);
  setvbuf(stdout, NULL, _IOLBF, 0);

  const CollInfo *info = findColl(SELFTEST_COLL);
  if (info == NULL) usageError("built for an unknown collective '%s'", SELFTEST_COLL);
  Options opt = parseOptions(argc, argv);
  if (opt.root >= nranks) opt.root %= nranks;

  flagcxSelftestComm_t comm = NULL;
  check(flagcxSelftestCommInitWorld(&comm), "communicator init");

  // Both buffers hold maxBytes (at least 10 floats so the -p output is always in bounds).
  size_t maxCount = opt.maxBytes / sizeof(float);
  size_t allocCount = maxCount < 16 ? 16 : maxCount;
  float *send = (float *)malloc(allocCount * sizeof(float));
  float *recv = (float *)malloc(allocCount * sizeof(float));
  if (send == NULL || recv == NULL) {
    fprintf(stderr, "rank %d: cannot allocate 2 x %zu bytes of host memory\n", gRank,
            allocCount * sizeof(float));
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  for (size_t i = 0; i < allocCount; i++) send[i] = (float)(i % 10);

#ifdef SELFTEST_HOST_API_LAYOUT
  // The >= v0.12 perf_<coll> binaries announce each datatype/op sweep; there is one here.
  if (gRank == 0) printf("#\n# datatype: float, op: sum\n#\n");
#endif

  const int firstRoot = info->rooted ? (opt.root < 0 ? 0 : opt.root) : 0;
  const int lastRoot = info->rooted ? (opt.root < 0 ? nranks - 1 : opt.root) : 0;

  for (size_t size = opt.minBytes;;) {
    memset(recv, 0, allocCount * sizeof(float));
    Counts shown = countsFor(info->coll, size, nranks, gRank, firstRoot);
    if (opt.printBuffer && gRank == 0) printBuf("sendbuff", send, shown.sendN);

    double sumElapsed = 0;
    for (int root = firstRoot; root <= lastRoot; root++) {
      Counts c = countsFor(info->coll, size, nranks, gRank, root);
      for (int i = 0; i < opt.warmupIters; i++)
        runOnce(info->coll, c, send, recv, root, gRank, nranks, comm);
      MPI_Barrier(MPI_COMM_WORLD);
      double t0 = MPI_Wtime();
      for (int i = 0; i < opt.iters; i++)
        runOnce(info->coll, c, send, recv, root, gRank, nranks, comm);
      double elapsed = (MPI_Wtime() - t0) / opt.iters;
      MPI_Barrier(MPI_COMM_WORLD);
      // Mean over ranks of each rank's mean time per iteration.
      MPI_Allreduce(MPI_IN_PLACE, &elapsed, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
      sumElapsed += elapsed / nranks;
    }
    double elapsed = sumElapsed / (lastRoot - firstRoot + 1);
    double algBw = (double)size / 1.0e9 / elapsed;
    double busBw = algBw * busFactor(info->coll, nranks);
    if (gRank == 0) {
      printf("Comm size: %zu bytes; Elapsed time: %lf sec; Algo bandwidth: %lf GB/s; "
             "Bus bandwidth: %lf GB/s\n",
             size, elapsed, algBw, busBw);
      if (opt.printBuffer) printBuf("recvbuff", recv, shown.recvN);
    }

    if (size > opt.maxBytes / opt.stepFactor) break; // next step would pass maxBytes (or overflow)
    size *= opt.stepFactor;
  }

  MPI_Barrier(MPI_COMM_WORLD);
  free(send);
  free(recv);
  check(flagcxSelftestCommDestroy(comm), "communicator destroy");
  MPI_Finalize();
  return 0;
}
