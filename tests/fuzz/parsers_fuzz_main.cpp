// Fuzz smoke test driver: parsers_fuzz [iterations per parser = 5000] [seed = 1].
// Built with -fsanitize=address,undefined by scripts/fuzz_asan.sh. Exit 0 when every input
// was parsed or rejected with an ssl::error.
#include <cstdio>
#include <cstdlib>

#include "parsers_fuzz.hpp"

int main(int argc, char** argv) {
  const long long iterations = argc > 1 ? std::atoll(argv[1]) : 5000;
  const unsigned long long seed = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1;
  int64_t failures = 0;
  for (const auto& r : ssl_fuzz::fuzz_all(iterations, seed)) {
    std::printf("%-9s %7lld inputs: %7lld parsed, %7lld rejected (ssl error), %lld failures\n", r.parser.c_str(),
                (long long)r.inputs, (long long)r.accepted, (long long)r.rejected, (long long)r.failures);
    failures += r.failures;
  }
  std::printf(failures ? "FAILED\n" : "OK\n");
  return failures ? 1 : 0;
}
