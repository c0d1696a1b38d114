// FlagCX stand-in (selftest) -- main() of the single unit-test binary (build/bin/main).
#include "selftest_unittest.hpp"

int main(int argc, char **argv) { return selftestRunTests(argc, argv); }
