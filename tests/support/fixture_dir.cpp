// Where the committed PyTorch fixtures live. The only translation unit compiled with the
// absolute SSL_FIXTURE_DIR define: every other test object is free of the checkout's path,
// so a clone in another folder reuses them from ccache.
#include <cstdlib>

namespace ssl_test {

/// $SSL_FIXTURE_DIR when set (fixtures moved, or a test binary run from another tree),
/// else tests/fixtures of the source tree this binary was configured from.
const char* fixture_dir() {
  if (const char* env = std::getenv("SSL_FIXTURE_DIR"); env != nullptr && *env != '\0') return env;
  return SSL_FIXTURE_DIR;
}

}  // namespace ssl_test
