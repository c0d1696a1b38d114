// FlagCX stand-in (selftest) -- perf-test options of the FlagCX interface after v0.13: the
// older ones plus -d <datatype|all> and -o <op|all>.  Each datatype/op sweep is announced by
// rank 0 as "#", "# datatype: <type>, op: <op>", "#".  Not FlagCX's code.
//
// Datatypes: int8 uint8 int32 uint32 int64 uint64 float double ("all": these, in this
// order); half and bfloat16 are FlagCX datatypes this stand-in does not have (an error).
// Ops: sum prod max min ("all": these); avg is not supported (an error).  An unknown name
// falls back to float / sum with a note on stdout, as FlagCX does.

#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools.h"

namespace {

const flagcxSelftestDataType_t kAllTypes[] = {flagcxSelftestInt8,  flagcxSelftestUint8,
                                              flagcxSelftestInt32, flagcxSelftestUint32,
                                              flagcxSelftestInt64, flagcxSelftestUint64,
                                              flagcxSelftestFloat, flagcxSelftestDouble};
const flagcxSelftestRedOp_t kAllOps[] = {flagcxSelftestSum, flagcxSelftestProd, flagcxSelftestMax,
                                         flagcxSelftestMin};

void printUsage(char *prog) {
  printf("FlagCX stand-in (selftest) perf test\n"
         "Usage: %s [-b <minbytes K/M/G>] [-e <maxbytes K/M/G>] [-f <stepfactor>]\n"
         "       [-w <warmupiters>] [-n <iters>] [-p <printbuffer 0/1>] [-r <root>]\n"
         "       [-s <splitmask>] [-R <localregister 0/1/2>] [-d <datatype/all>] [-o <op/all>] [-h]\n"
         "Defaults: -b 1M -e 1G -f 2 -w 5 -n 20 -p 0 -r -1 -s 0 -R 0 -d float -o sum\n",
         basename(prog));
}

std::vector<flagcxSelftestDataType_t> parseTypes(const char *name) {
  if (strcmp(name, "all") == 0)
    return std::vector<flagcxSelftestDataType_t>(kAllTypes, kAllTypes + sizeof(kAllTypes) / sizeof(kAllTypes[0]));
  for (flagcxSelftestDataType_t t : kAllTypes)
    if (strcmp(name, perfTypeName(t)) == 0) return {t};
  if (strcmp(name, "half") == 0 || strcmp(name, "bfloat16") == 0)
    perfUsageExit("datatype '%s' is not supported by the FlagCX stand-in (selftest); it has int8 "
                  "uint8 int32 uint32 int64 uint64 float double",
                  name);
  printf("invalid datatype '%s', defaulting to float\n", name);
  return {flagcxSelftestFloat};
}

std::vector<flagcxSelftestRedOp_t> parseOps(const char *name) {
  if (strcmp(name, "all") == 0)
    return std::vector<flagcxSelftestRedOp_t>(kAllOps, kAllOps + sizeof(kAllOps) / sizeof(kAllOps[0]));
  for (flagcxSelftestRedOp_t o : kAllOps)
    if (strcmp(name, perfOpName(o)) == 0) return {o};
  if (strcmp(name, "avg") == 0)
    perfUsageExit("op '%s' is not supported by the FlagCX stand-in (selftest); it has sum prod max min", name);
  printf("invalid op '%s', defaulting to sum\n", name);
  return {flagcxSelftestSum};
}

}  // namespace

void perfAnnounceSweep(const char *typeName, const char *opName) {
  printf("#\n# datatype: %s, op: %s\n#\n", typeName, opName);
}

void perfParseOptions(int argc, char **argv, PerfOptions *opt) {
  static struct option longOpts[] = {{"minbytes", required_argument, 0, 'b'},
                                     {"maxbytes", required_argument, 0, 'e'},
                                     {"stepfactor", required_argument, 0, 'f'},
                                     {"warmup_iters", required_argument, 0, 'w'},
                                     {"iters", required_argument, 0, 'n'},
                                     {"print_buffer", required_argument, 0, 'p'},
                                     {"root", required_argument, 0, 'r'},
                                     {"split_mask", required_argument, 0, 's'},
                                     {"local_register", required_argument, 0, 'R'},
                                     {"op", required_argument, 0, 'o'},
                                     {"datatype", required_argument, 0, 'd'},
                                     {"help", no_argument, 0, 'h'},
                                     {0, 0, 0, 0}};
  long v = 0;
  int c;
  while ((c = getopt_long(argc, argv, "b:e:f:w:n:p:r:s:R:o:d:h", longOpts, NULL)) != -1) {
    switch (c) {
    case 'b':
      if (!perfParseSize(optarg, &opt->minBytes)) perfUsageExit("invalid minbytes value '%s'", optarg);
      break;
    case 'e':
      if (!perfParseSize(optarg, &opt->maxBytes)) perfUsageExit("invalid maxbytes value '%s'", optarg);
      break;
    case 'f':
      if (!perfParseLong(optarg, 2, 1L << 30, &v))
        perfUsageExit("invalid stepfactor value '%s' (an integer >= 2)", optarg);
      opt->stepFactor = (size_t)v;
      break;
    case 'w':
      if (!perfParseLong(optarg, 0, 1L << 30, &v)) perfUsageExit("invalid warmupiters value '%s'", optarg);
      opt->warmupIters = (int)v;
      break;
    case 'n':
      if (!perfParseLong(optarg, 1, 1L << 30, &v)) perfUsageExit("invalid iters value '%s' (>= 1)", optarg);
      opt->iters = (int)v;
      break;
    case 'p':
      if (!perfParseLong(optarg, 0, 1, &v)) perfUsageExit("invalid printbuffer value '%s' (0 or 1)", optarg);
      opt->printBuffer = (int)v;
      break;
    case 'r':
      if (!perfParseLong(optarg, -1, 1L << 30, &v)) perfUsageExit("invalid root value '%s'", optarg);
      opt->root = (int)v;
      break;
    case 's':
      if (!perfParseLong(optarg, 0, 0, &v))
        perfUsageExit("split mask '%s' is not supported by the FlagCX stand-in (selftest); use 0", optarg);
      opt->splitMask = 0;
      break;
    case 'R':
      if (!perfParseLong(optarg, 0, 2, &v)) perfUsageExit("invalid localregister value '%s' (0, 1 or 2)", optarg);
      opt->localRegister = (int)v;
      break;
    case 'd':
      opt->types = parseTypes(optarg);
      break;
    case 'o':
      opt->ops = parseOps(optarg);
      break;
    case 'h':
      printUsage(argv[0]);
      exit(0);
    default:  // getopt has said what was wrong on stderr
      printUsage(argv[0]);
      exit(1);
    }
  }
  if (optind < argc) perfUsageExit("unexpected argument '%s'", argv[optind]);
  if (opt->minBytes == 0) perfUsageExit("minbytes must be at least 1 byte%s", "");
  if (opt->minBytes > opt->maxBytes) perfUsageExit("minbytes is larger than maxbytes%s", "");
}
