/*
 * FlagCX stand-in (selftest): collectives on host buffers, each one MPI call (or a
 * few, when an element-wise operation is longer than an MPI int count allows).
 */
#include <string.h>

#include "selftest_internal.h"

#define SELFTEST_TRY(expr)                                                                 \
  do {                                                                                     \
    flagcxSelftestResult_t selftestRes_ = (expr);                                          \
    if (selftestRes_ != flagcxSelftestSuccess) return selftestRes_;                        \
  } while (0)

/* Fault injection (stand-in only): "noexchange" makes every collective return, after its
 * argument checks, without exchanging anything -- recvbuff is left as it was. */
#define SELFTEST_NOEXCHANGE_POINT()                                                        \
  do {                                                                                     \
    if (selftestFaultIs(flagcxSelftestFaultNoExchange)) return flagcxSelftestSuccess;      \
  } while (0)

/* Per-rank block counts must fit one MPI int count. */
static flagcxSelftestResult_t checkBlock(size_t count) {
  return count > (size_t)INT_MAX ? flagcxSelftestNotSupported : flagcxSelftestSuccess;
}

static size_t chunkOf(size_t remaining) {
  return remaining < SELFTEST_MAX_CHUNK ? remaining : SELFTEST_MAX_CHUNK;
}

flagcxSelftestResult_t flagcxSelftestAllReduce(const void *sendbuff, void *recvbuff, size_t count,
                                               flagcxSelftestDataType_t datatype,
                                               flagcxSelftestRedOp_t op,
                                               flagcxSelftestComm_t comm) {
  MPI_Datatype type;
  MPI_Op mop;
  size_t done = 0, esize = flagcxSelftestTypeSize(datatype);
  SELFTEST_TRY(selftestCheckComm(comm));
  SELFTEST_TRY(selftestMpiType(datatype, &type));
  SELFTEST_TRY(selftestMpiOp(op, &mop));
  SELFTEST_NOEXCHANGE_POINT();
  while (done < count) {
    size_t n = chunkOf(count - done);
    const char *s = (const char *)sendbuff + done * esize;
    char *r = (char *)recvbuff + done * esize;
    if (comm->nclusters > 1) {
      /* hybrid: reduce inside the cluster to its root, exchange between the cluster roots,
       * spread back inside the cluster */
      int crank;
      MPI_Comm_rank(comm->clusterComm, &crank);
      SELFTEST_TRY(selftestMpiResult(MPI_Reduce(crank == 0 && s == r ? MPI_IN_PLACE : s, r,
                                                (int)n, type, mop, 0, comm->clusterComm)));
      /* Fault injection (stand-in only): "cross-cluster" skips the roots' exchange, so every
       * cluster keeps its own partial result */
      if (comm->rootsComm != MPI_COMM_NULL && !selftestFaultIs(flagcxSelftestFaultCrossCluster))
        SELFTEST_TRY(selftestMpiResult(
            MPI_Allreduce(MPI_IN_PLACE, r, (int)n, type, mop, comm->rootsComm)));
      SELFTEST_TRY(selftestMpiResult(MPI_Bcast(r, (int)n, type, 0, comm->clusterComm)));
    } else {
      SELFTEST_TRY(selftestMpiResult(MPI_Allreduce(s, r, (int)n, type, mop, comm->mpiComm)));
    }
    done += n;
  }
  /* Fault injection (stand-in only): one element of rank 0's result off by one.  Element 1
   * (element 0 when there is only one) lies inside the first ten that the perf tests print. */
  if (comm->rank == 0 && count > 0 &&
      (selftestFaultIs(flagcxSelftestFaultCorrupt) ||
       selftestFaultIs(flagcxSelftestFaultCorruptQuiet) || selftestFaultIs(flagcxSelftestFaultExit0)))
    selftestBumpElement(recvbuff, count > 1 ? 1 : 0, datatype);
  return flagcxSelftestSuccess;
}

flagcxSelftestResult_t flagcxSelftestAllGather(const void *sendbuff, void *recvbuff,
                                               size_t sendcount,
                                               flagcxSelftestDataType_t datatype,
                                               flagcxSelftestComm_t comm) {
  MPI_Datatype type;
  SELFTEST_TRY(selftestCheckComm(comm));
  SELFTEST_TRY(selftestMpiType(datatype, &type));
  SELFTEST_TRY(checkBlock(sendcount));
  SELFTEST_NOEXCHANGE_POINT();
  return selftestMpiResult(MPI_Allgather(sendbuff, (int)sendcount, type, recvbuff,
                                         (int)sendcount, type, comm->mpiComm));
}

flagcxSelftestResult_t flagcxSelftestReduceScatter(const void *sendbuff, void *recvbuff,
                                                   size_t recvcount,
                                                   flagcxSelftestDataType_t datatype,
                                                   flagcxSelftestRedOp_t op,
                                                   flagcxSelftestComm_t comm) {
  MPI_Datatype type;
  MPI_Op mop;
  SELFTEST_TRY(selftestCheckComm(comm));
  SELFTEST_TRY(selftestMpiType(datatype, &type));
  SELFTEST_TRY(selftestMpiOp(op, &mop));
  SELFTEST_TRY(checkBlock(recvcount));
  SELFTEST_NOEXCHANGE_POINT();
  return selftestMpiResult(MPI_Reduce_scatter_block(sendbuff, recvbuff, (int)recvcount, type,
                                                    mop, comm->mpiComm));
}

flagcxSelftestResult_t flagcxSelftestAlltoAll(const void *sendbuff, void *recvbuff, size_t count,
                                              flagcxSelftestDataType_t datatype,
                                              flagcxSelftestComm_t comm) {
  MPI_Datatype type;
  SELFTEST_TRY(selftestCheckComm(comm));
  SELFTEST_TRY(selftestMpiType(datatype, &type));
  SELFTEST_TRY(checkBlock(count));
  SELFTEST_NOEXCHANGE_POINT();
  return selftestMpiResult(
      MPI_Alltoall(sendbuff, (int)count, type, recvbuff, (int)count, type, comm->mpiComm));
}

flagcxSelftestResult_t flagcxSelftestBroadcast(const void *sendbuff, void *recvbuff, size_t count,
                                               flagcxSelftestDataType_t datatype, int root,
                                               flagcxSelftestComm_t comm) {
  MPI_Datatype type;
  size_t done = 0, esize = flagcxSelftestTypeSize(datatype);
  SELFTEST_TRY(selftestCheckComm(comm));
  SELFTEST_TRY(selftestMpiType(datatype, &type));
  SELFTEST_TRY(selftestCheckRoot(comm, root));
  SELFTEST_NOEXCHANGE_POINT();
  /* MPI_Bcast works in place: the root first copies its input into recvbuff. */
  if (comm->rank == root && sendbuff != recvbuff) memcpy(recvbuff, sendbuff, count * esize);
  while (done < count) {
    size_t n = chunkOf(count - done);
    SELFTEST_TRY(selftestMpiResult(
        MPI_Bcast((char *)recvbuff + done * esize, (int)n, type, root, comm->mpiComm)));
    done += n;
  }
  return flagcxSelftestSuccess;
}

flagcxSelftestResult_t flagcxSelftestReduce(const void *sendbuff, void *recvbuff, size_t count,
                                            flagcxSelftestDataType_t datatype,
                                            flagcxSelftestRedOp_t op, int root,
                                            flagcxSelftestComm_t comm) {
  MPI_Datatype type;
  MPI_Op mop;
  size_t done = 0, esize = flagcxSelftestTypeSize(datatype);
  SELFTEST_TRY(selftestCheckComm(comm));
  SELFTEST_TRY(selftestMpiType(datatype, &type));
  SELFTEST_TRY(selftestMpiOp(op, &mop));
  SELFTEST_TRY(selftestCheckRoot(comm, root));
  SELFTEST_NOEXCHANGE_POINT();
  while (done < count) {
    size_t n = chunkOf(count - done);
    SELFTEST_TRY(selftestMpiResult(MPI_Reduce((const char *)sendbuff + done * esize,
                                              (char *)recvbuff + done * esize, (int)n, type, mop,
                                              root, comm->mpiComm)));
    done += n;
  }
  return flagcxSelftestSuccess;
}

flagcxSelftestResult_t flagcxSelftestGather(const void *sendbuff, void *recvbuff, size_t sendcount,
                                            flagcxSelftestDataType_t datatype, int root,
                                            flagcxSelftestComm_t comm) {
  MPI_Datatype type;
  SELFTEST_TRY(selftestCheckComm(comm));
  SELFTEST_TRY(selftestMpiType(datatype, &type));
  SELFTEST_TRY(selftestCheckRoot(comm, root));
  SELFTEST_TRY(checkBlock(sendcount));
  SELFTEST_NOEXCHANGE_POINT();
  return selftestMpiResult(MPI_Gather(sendbuff, (int)sendcount, type, recvbuff, (int)sendcount,
                                      type, root, comm->mpiComm));
}

flagcxSelftestResult_t flagcxSelftestScatter(const void *sendbuff, void *recvbuff,
                                             size_t recvcount,
                                             flagcxSelftestDataType_t datatype, int root,
                                             flagcxSelftestComm_t comm) {
  MPI_Datatype type;
  SELFTEST_TRY(selftestCheckComm(comm));
  SELFTEST_TRY(selftestMpiType(datatype, &type));
  SELFTEST_TRY(selftestCheckRoot(comm, root));
  SELFTEST_TRY(checkBlock(recvcount));
  SELFTEST_NOEXCHANGE_POINT();
  return selftestMpiResult(MPI_Scatter(sendbuff, (int)recvcount, type, recvbuff, (int)recvcount,
                                       type, root, comm->mpiComm));
}
