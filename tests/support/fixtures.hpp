#pragma once
// Golden values written by scripts/make_fixtures.py (PyTorch) and committed under
// tests/fixtures/. Format: one JSON object per file, {"name": {"shape": [...], "data": [...]}}.
// Scalars are stored with shape [].
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <ssl/tensor/tensor.hpp>
#include <string>

namespace ssl_test {

/// tests/fixtures of this source tree, or $SSL_FIXTURE_DIR (support/fixture_dir.cpp).
const char* fixture_dir();

class fixture {
 public:
  explicit fixture(const std::string& relpath) : path_(std::string(fixture_dir()) + "/" + relpath) {
    std::ifstream in(path_);
    if (!in) throw ssl::io_error("fixture not found: " + path_ + " (run scripts/make_fixtures.py)");
    in >> j_;
  }
  bool has(const std::string& name) const { return j_.contains(name); }
  /// The named array as a tensor.
  ssl::tensor<ssl::cpu> tensor(const std::string& name) const {
    if (!j_.contains(name)) throw ssl::io_error("fixture " + path_ + " has no entry '" + name + "'");
    const auto& e = j_.at(name);
    ssl::shape s;
    for (auto d : e.at("shape")) s.push_back(d.get<int64_t>());
    std::vector<float> v = e.at("data").get<std::vector<float>>();
    return ssl::tensor<ssl::cpu>::from(s, v);
  }
  float scalar(const std::string& name) const { return tensor(name)[0]; }
  const nlohmann::json& json() const { return j_; }

 private:
  std::string path_;
  nlohmann::json j_;
};

/// max_i |a_i - b_i| / max(max_i |b_i|, floor): the relative error used against fixtures.
inline double rel_error(const ssl::tensor<ssl::cpu>& a, const ssl::tensor<ssl::cpu>& b, double floor = 1e-6) {
  ssl::expect_shape(a, b.shape(), "rel_error");
  double num = 0, den = floor;
  for (int64_t i = 0; i < a.numel(); ++i) {
    num = std::max(num, double(std::abs(a[i] - b[i])));
    den = std::max(den, double(std::abs(b[i])));
  }
  return num / den;
}

}  // namespace ssl_test
