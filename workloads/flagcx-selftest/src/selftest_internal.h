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
  /* FLAGCX_CLUSTER_SPLIT_LIST (as FlagCX reads it): the ranks split into nclusters contiguous
   * clusters; a hybrid communicator's allreduce reduces inside each cluster, exchanges between
   * the cluster roots (rootsComm) and spreads the result back (clusterComm). */
  int nclusters;
  int clusterId;
  MPI_Comm clusterComm; /* MPI_COMM_NULL when homogeneous */
  MPI_Comm rootsComm;   /* MPI_COMM_NULL except on cluster roots of a hybrid communicator */
};

/* Split the communicator by FLAGCX_CLUSTER_SPLIT_LIST (comm.c). */
flagcxSelftestResult_t selftestClusterInit(struct flagcxSelftestComm *c);

/* MPI counts are int: element-wise operations are split into chunks of this many elements. */
#define SELFTEST_MAX_CHUNK ((size_t)1 << 30)

flagcxSelftestResult_t selftestMpiResult(int mpiRc);
flagcxSelftestResult_t selftestCheckComm(flagcxSelftestComm_t comm);
flagcxSelftestResult_t selftestMpiType(flagcxSelftestDataType_t datatype, MPI_Datatype *out);
flagcxSelftestResult_t selftestMpiOp(flagcxSelftestRedOp_t op, MPI_Op *out);
flagcxSelftestResult_t selftestCheckRoot(flagcxSelftestComm_t comm, int root);

/* Fault injection (stand-in only): see fault.c. */
int selftestFaultIs(flagcxSelftestFault_t fault);
/* Add one to element `index` of a buffer of `datatype` (the "corrupt" faults). */
void selftestBumpElement(void *buf, size_t index, flagcxSelftestDataType_t datatype);
/* Say on stderr, once per process, which fault is active (rank 0 only). */
void selftestAnnounceFault(int rank);

#endif
