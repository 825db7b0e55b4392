#pragma once
// The message of the exception of type E that f() throws, or "<no exception>".
#include <string>

namespace ssl_test {
template <class E, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "<no exception>";
}
}  // namespace ssl_test
