// Must NOT compile: an encoder (ConvNet-S) given where simclr expects a projection head.
// tests/CMakeLists.txt runs the compiler on this file and expects the readable static_assert
// message "H must satisfy ssl::Head" instead of a page of template errors.
#include <ssl/encoders/convnet_s.hpp>
#include <ssl/methods/simclr.hpp>

int main() {
  ssl::simclr<ssl::convnet_s<>, ssl::convnet_s<>> m(ssl::convnet_s<>(1), ssl::convnet_s<>(1));
  (void)m;
}
