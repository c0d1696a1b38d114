// FlagCX stand-in (selftest) -- main() of runner_unit_tests.
#include "selftest_unittest.hpp"

int main(int argc, char **argv) { return selftestRunTests(argc, argv); }
