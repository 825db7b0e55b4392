// Must NOT compile: a type that is not a Module inside ssl::sequential.
#include <ssl/nn/linear.hpp>
#include <ssl/nn/sequential.hpp>

struct not_a_layer {};

int main() {
  ssl::sequential<ssl::linear<>, not_a_layer> s;
  (void)s;
}
