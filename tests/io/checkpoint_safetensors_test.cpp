#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <ssl/io/safetensors.hpp>
#include <string>

using Catch::Matchers::Contains;
using ssl::tensor;

namespace {
std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("ssl_test_" + std::to_string(::getpid()) + "_" + name)).string();
}
ssl::named_tensors sample_tensors() {
  tensor<ssl::cpu> a({2, 3}), b({4}), scalar(ssl::shape{}), empty({0, 5});
  for (int64_t i = 0; i < a.numel(); ++i) a[i] = 0.5f * float(i) - 1.0f;
  for (int64_t i = 0; i < b.numel(); ++i) b[i] = 1e-3f * float(i * i);
  scalar[0] = 42.0f;
  return {{"enc.weight", a}, {"enc.bias", b}, {"step", scalar}, {"empty", empty}};
}
std::vector<char> bytes_of(const std::string& header, const std::vector<float>& data) {
  std::vector<char> out(8 + header.size() + data.size() * 4);
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, header.data(), header.size());
  if (!data.empty()) std::memcpy(out.data() + 8 + header.size(), data.data(), data.size() * 4);
  return out;
}
}  // namespace

TEST_CASE("safetensors round trip keeps names, order, shapes, values and metadata") {
  const std::string path = temp_path("roundtrip.safetensors");
  const auto src = sample_tensors();
  ssl::save_safetensors(path, src, {{"note", "hello"}});
  const auto back = ssl::load_safetensors(path);
  REQUIRE(back.tensors.size() == src.size());
  for (size_t i = 0; i < src.size(); ++i) {
    CHECK(back.tensors[i].first == src[i].first);
    CHECK(back.tensors[i].second.shape() == src[i].second.shape());
    CHECK(back.tensors[i].second.to_vector() == src[i].second.to_vector());
  }
  CHECK(back.metadata.at("note") == "hello");
  CHECK(back.at("step")[0] == 42.0f);
  CHECK_THROWS_WITH(back.at("nope"), Contains("no tensor named 'nope'"));
  // data starts 8-byte aligned, and no temporary file is left behind
  const auto raw = ssl::to_safetensors(src);
  uint64_t n = 0;
  std::memcpy(&n, raw.data(), 8);
  CHECK(n % 8 == 0);
  int leftovers = 0;
  for (const auto& e : std::filesystem::directory_iterator(std::filesystem::temp_directory_path()))
    leftovers += e.path().filename().string().rfind("ssl_test_" + std::to_string(::getpid()) + "_roundtrip.safetensors.tmp", 0) == 0;
  CHECK(leftovers == 0);
  std::filesystem::remove(path);
}

TEST_CASE("safetensors reads a file written by another writer (header order, spaces)") {
  // b is stored before a in the data; the header lists a first
  const std::string header =
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},"b":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]}})"
      "   ";
  const auto c = ssl::from_safetensors(bytes_of(header, {1.0f, 2.0f, 3.0f, 4.0f}));
  REQUIRE(c.tensors.size() == 2);
  CHECK(c.tensors[0].first == "b");
  CHECK(c.at("a").to_vector() == std::vector<float>{3.0f, 4.0f});
  CHECK(c.at("b").shape() == ssl::shape{1, 2});
}

TEST_CASE("malformed safetensors throw format_error naming the problem") {
  const std::string ok = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  auto bad = [](const std::string& h, std::vector<float> d) { return ssl::from_safetensors(bytes_of(h, d), "x.st"); };
  CHECK_NOTHROW(bad(ok, {1, 2}));
  CHECK_THROWS_AS(bad(ok, {1}), ssl::format_error);
  CHECK_THROWS_WITH(bad(ok, {1}), Contains("x.st") && Contains("outside the 4 data bytes"));
  CHECK_THROWS_WITH(bad(ok, {1, 2, 3}), Contains("cover 8 data bytes but the file holds 12"));
  CHECK_THROWS_WITH(bad(R"({"a":{"dtype":"F16","shape":[2],"data_offsets":[0,8]}})", {1, 2}),
                    Contains("dtype F16, expected F32"));
  CHECK_THROWS_WITH(bad(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", {1, 2}),
                    Contains("needs 12 bytes, its offsets span 8"));
  CHECK_THROWS_WITH(bad(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", {1, 2}),
                    Contains("not a non-negative integer"));
  CHECK_THROWS_WITH(bad(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", {1, 2}),
                    Contains("starts at byte 4, expected 0"));
  CHECK_THROWS_WITH(bad(R"({"a":{"dtype":"F32","shape":[2]})", {1, 2}), Contains("not valid JSON"));
  CHECK_THROWS_WITH(bad(R"([1, 2])", {}), Contains("not a JSON object"));
  CHECK_THROWS_WITH(bad(R"({"__metadata__":{"k":1}})", {}), Contains("value of 'k' is not a string"));
  CHECK_THROWS_WITH(ssl::from_safetensors(std::vector<char>(5), "y.st"), Contains("y.st") && Contains("truncated"));
  auto huge = bytes_of(ok, {1, 2});
  const uint64_t n = 1000;
  std::memcpy(huge.data(), &n, 8);
  CHECK_THROWS_WITH(ssl::from_safetensors(huge), Contains("header length 1000 exceeds"));
}

TEST_CASE("truncated and corrupted files on disk throw format_error with the path") {
  const std::string path = temp_path("corrupt.safetensors");
  ssl::save_safetensors(path, sample_tensors());
  const auto size = std::filesystem::file_size(path);
  for (uintmax_t keep : {uintmax_t(3), uintmax_t(20), size - 1}) {
    std::filesystem::resize_file(path, keep);
    CHECK_THROWS_AS(ssl::load_safetensors(path), ssl::format_error);
    CHECK_THROWS_WITH(ssl::load_safetensors(path), Contains(path));
    ssl::save_safetensors(path, sample_tensors());
  }
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(9);
    f.put('#');  // break the JSON
  }
  CHECK_THROWS_WITH(ssl::load_safetensors(path), Contains("not valid JSON"));
  std::filesystem::remove(path);
  CHECK_THROWS_AS(ssl::load_safetensors(path), ssl::io_error);
  CHECK_THROWS_WITH(ssl::save_safetensors("/nonexistent-dir/x.safetensors", sample_tensors()), Contains("cannot create"));
}

TEST_CASE("writing rejects duplicate or reserved names") {
  ssl::named_tensors dup{{"a", tensor<ssl::cpu>({1})}, {"a", tensor<ssl::cpu>({1})}};
  CHECK_THROWS_WITH(ssl::to_safetensors(dup), Contains("duplicate tensor name 'a'"));
  ssl::named_tensors reserved{{"__metadata__", tensor<ssl::cpu>({1})}};
  CHECK_THROWS_AS(ssl::to_safetensors(reserved), ssl::value_error);
}
