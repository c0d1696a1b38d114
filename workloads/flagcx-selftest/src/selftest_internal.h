/* FlagCX stand-in (selftest): internals shared by the library's source files. */
#ifndef FLAGCX_SELFTEST_INTERNAL_H_
#define FLAGCX_SELFTEST_INTERNAL_H_

#include <limits.h>
#include <mpi.h>

#include "flagcx_selftest.h"

struct flagcxSelftestComm {
  MPI_Comm mpiComm;
  int rank;
  int nranks;
};

/* MPI counts are int: element-wise operations are split into chunks of this many elements. */
#define SELFTEST_MAX_CHUNK ((size_t)1 << 30)

flagcxSelftestResult_t selftestMpiResult(int mpiRc);
flagcxSelftestResult_t selftestCheckComm(flagcxSelftestComm_t comm);
flagcxSelftestResult_t selftestMpiType(flagcxSelftestDataType_t datatype, MPI_Datatype *out);
flagcxSelftestResult_t selftestMpiOp(flagcxSelftestRedOp_t op, MPI_Op *out);
flagcxSelftestResult_t selftestCheckRoot(flagcxSelftestComm_t comm, int root);

#endif
