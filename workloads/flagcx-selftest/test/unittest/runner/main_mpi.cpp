// FlagCX stand-in (selftest) -- main() of runner_mpi_tests (built with SELFTEST_WITH_MPI).
#include "selftest_unittest.hpp"

int main(int argc, char **argv) { return selftestRunTests(argc, argv); }
