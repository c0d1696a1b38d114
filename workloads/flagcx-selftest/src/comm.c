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
  switch (datatype) {
  case flagcxSelftestFloat: return sizeof(float);
  case flagcxSelftestDouble: return sizeof(double);
  case flagcxSelftestInt8:
  case flagcxSelftestUint8: return 1;
  case flagcxSelftestInt32:
  case flagcxSelftestUint32: return 4;
  case flagcxSelftestInt64:
  case flagcxSelftestUint64: return 8;
  default: return 0;
  }
}

flagcxSelftestResult_t selftestMpiResult(int mpiRc) {
  return mpiRc == MPI_SUCCESS ? flagcxSelftestSuccess : flagcxSelftestMpiError;
}

flagcxSelftestResult_t selftestCheckComm(flagcxSelftestComm_t comm) {
  return comm == NULL ? flagcxSelftestInvalidArgument : flagcxSelftestSuccess;
}

flagcxSelftestResult_t selftestMpiType(flagcxSelftestDataType_t datatype, MPI_Datatype *out) {
  switch (datatype) {
  case flagcxSelftestFloat: *out = MPI_FLOAT; break;
  case flagcxSelftestDouble: *out = MPI_DOUBLE; break;
  case flagcxSelftestInt8: *out = MPI_INT8_T; break;
  case flagcxSelftestUint8: *out = MPI_UINT8_T; break;
  case flagcxSelftestInt32: *out = MPI_INT32_T; break;
  case flagcxSelftestUint32: *out = MPI_UINT32_T; break;
  case flagcxSelftestInt64: *out = MPI_INT64_T; break;
  case flagcxSelftestUint64: *out = MPI_UINT64_T; break;
  default: return flagcxSelftestNotSupported;
  }
  return flagcxSelftestSuccess;
}

flagcxSelftestResult_t selftestMpiOp(flagcxSelftestRedOp_t op, MPI_Op *out) {
  switch (op) {
  case flagcxSelftestSum: *out = MPI_SUM; break;
  case flagcxSelftestProd: *out = MPI_PROD; break;
  case flagcxSelftestMax: *out = MPI_MAX; break;
  case flagcxSelftestMin: *out = MPI_MIN; break;
  default: return flagcxSelftestNotSupported;
  }
  return flagcxSelftestSuccess;
}

flagcxSelftestResult_t selftestCheckRoot(flagcxSelftestComm_t comm, int root) {
  if (comm == NULL) return flagcxSelftestInvalidArgument;
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
  selftestAnnounceFault(c->rank);
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
