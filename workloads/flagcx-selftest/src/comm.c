/* FlagCX stand-in (selftest): communicator, error strings, type and op mapping. */
#include <stdlib.h>

#include "selftest_internal.h"

const char *flagcxSelftestGetErrorString(flagcxSelftestResult_t result) {
  switch (result) {
  case flagcxSelftestSuccess:
    return "success";
  case flagcxSelftestInvalidArgument:
    return "invalid argument";
  case flagcxSelftestNotSupported:
    return "not supported by the FlagCX stand-in (selftest)";
  case flagcxSelftestMpiError:
    return "MPI call failed";
  case flagcxSelftestSystemError:
    return "system error";
  }
  return "unknown result";
}

flagcxSelftestResult_t flagcxSelftestGetVersion(int *version) {
  if (version == NULL) return flagcxSelftestInvalidArgument;
  *version = FLAGCX_SELFTEST_VERSION_CODE;
  return flagcxSelftestSuccess;
}

size_t flagcxSelftestTypeSize(flagcxSelftestDataType_t datatype) {
  return datatype == flagcxSelftestFloat ? sizeof(float) : 0;
}

flagcxSelftestResult_t selftestMpiResult(int mpiRc) {
  return mpiRc == MPI_SUCCESS ? flagcxSelftestSuccess : flagcxSelftestMpiError;
}

flagcxSelftestResult_t selftestCheckComm(flagcxSelftestComm_t comm) {
  return comm == NULL ? flagcxSelftestInvalidArgument : flagcxSelftestSuccess;
}

flagcxSelftestResult_t selftestMpiType(flagcxSelftestDataType_t datatype, MPI_Datatype *out) {
  if (datatype != flagcxSelftestFloat) return flagcxSelftestNotSupported;
  *out = MPI_FLOAT;
  return flagcxSelftestSuccess;
}

flagcxSelftestResult_t selftestMpiOp(flagcxSelftestRedOp_t op, MPI_Op *out) {
  if (op != flagcxSelftestSum) return flagcxSelftestNotSupported;
  *out = MPI_SUM;
  return flagcxSelftestSuccess;
}

flagcxSelftestResult_t selftestCheckRoot(flagcxSelftestComm_t comm, int root) {
  return (root < 0 || root >= comm->nranks) ? flagcxSelftestInvalidArgument
                                            : flagcxSelftestSuccess;
}

flagcxSelftestResult_t flagcxSelftestCommInitWorld(flagcxSelftestComm_t *comm) {
  int initialized = 0;
  struct flagcxSelftestComm *c;
  if (comm == NULL) return flagcxSelftestInvalidArgument;
  MPI_Initialized(&initialized);
  if (!initialized) return flagcxSelftestInvalidArgument; /* the caller owns MPI_Init */
  c = (struct flagcxSelftestComm *)calloc(1, sizeof(*c));
  if (c == NULL) return flagcxSelftestSystemError;
  if (MPI_Comm_dup(MPI_COMM_WORLD, &c->mpiComm) != MPI_SUCCESS) {
    free(c);
    return flagcxSelftestMpiError;
  }
  MPI_Comm_set_errhandler(c->mpiComm, MPI_ERRORS_RETURN);
  MPI_Comm_rank(c->mpiComm, &c->rank);
  MPI_Comm_size(c->mpiComm, &c->nranks);
  *comm = c;
  return flagcxSelftestSuccess;
}

flagcxSelftestResult_t flagcxSelftestCommDestroy(flagcxSelftestComm_t comm) {
  if (comm == NULL) return flagcxSelftestInvalidArgument;
  MPI_Comm_free(&comm->mpiComm);
  free(comm);
  return flagcxSelftestSuccess;
}

flagcxSelftestResult_t flagcxSelftestCommRank(flagcxSelftestComm_t comm, int *rank) {
  if (comm == NULL || rank == NULL) return flagcxSelftestInvalidArgument;
  *rank = comm->rank;
  return flagcxSelftestSuccess;
}

flagcxSelftestResult_t flagcxSelftestCommCount(flagcxSelftestComm_t comm, int *nranks) {
  if (comm == NULL || nranks == NULL) return flagcxSelftestInvalidArgument;
  *nranks = comm->nranks;
  return flagcxSelftestSuccess;
}

flagcxSelftestResult_t flagcxSelftestBarrier(flagcxSelftestComm_t comm) {
  if (comm == NULL) return flagcxSelftestInvalidArgument;
  return selftestMpiResult(MPI_Barrier(comm->mpiComm));
}
