// Built in CI against the installed package: find_package(ssl CONFIG REQUIRED).
#include <iostream>
#include <ssl/ssl.hpp>

int main() {
  ssl::rng g(42);
  ssl::tensor<ssl::cpu> a(ssl::shape{2, 3}), b(ssl::shape{3, 2}), c;
  for (int64_t i = 0; i < a.numel(); ++i) a[i] = g.uniform();
  for (int64_t i = 0; i < b.numel(); ++i) b[i] = g.uniform();
  ssl::ops::matmul(a, ssl::ops::trans::no, b, ssl::ops::trans::no, c);
  std::cout << "consumer: ssl " << SSL_VERSION_STRING << " linked, C" << c.shape() << " = " << c[0] << " ...\n";
  return c.numel() == 4 ? 0 : 1;
}
