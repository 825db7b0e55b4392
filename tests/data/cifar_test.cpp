#include <catch2/catch.hpp>
#include <ssl/core/rng.hpp>
#include <ssl/data/cifar.hpp>

#include "error_message.hpp"
#include "temp_dir.hpp"

using ssl::data::byte_vector;
using ssl_test::message_of;

namespace {
// n records: label byte(s) then 3072 pixel bytes; label r % classes.
byte_vector cifar_bytes(int n, bool hundred, uint64_t seed) {
  ssl::rng g(seed);
  byte_vector b;
  for (int r = 0; r < n; ++r) {
    if (hundred) {
      b.push_back(uint8_t(r % 20));
      b.push_back(uint8_t((r * 7) % 100));
    } else {
      b.push_back(uint8_t(r % 10));
    }
    for (int k = 0; k < 3072; ++k) b.push_back(uint8_t(g.below(256)));
  }
  return b;
}
}  // namespace

TEST_CASE("CIFAR-10 batches load in order as (N, 3, 32, 32) with planar RGB") {
  ssl_test::temp_dir dir("cifar10");
  std::vector<byte_vector> files;
  for (int b = 1; b <= 5; ++b) {
    files.push_back(cifar_bytes(3, false, uint64_t(b)));
    ssl::data::write_bytes(dir / ("data_batch_" + std::to_string(b) + ".bin"), files.back());
  }
  ssl::data::write_bytes(dir / "test_batch.bin", cifar_bytes(2, false, 9));
  const auto train = ssl::data::load_cifar10(dir.str(), ssl::data::split::train);
  REQUIRE(train.size() == 15);
  CHECK(train.images().shape() == ssl::shape{15, 3, 32, 32});
  CHECK(train.num_classes() == 10);
  // sample 4 = record 1 of batch 2; channel 1 (G), row 5, column 7 = pixel byte 1024 + 5*32 + 7
  const auto& rec = files[1];
  const size_t at = 3073 + 1 + 1024 + 5 * 32 + 7;
  CHECK(train.image(4).at(1, 5, 7) == float(rec[at]) / 255.0f);
  CHECK(train.label(4) == 1);
  CHECK(ssl::data::load_cifar10(dir.str(), ssl::data::split::test).size() == 2);
}

TEST_CASE("CIFAR-100 has fine and coarse labels") {
  ssl_test::temp_dir dir("cifar100");
  const auto bytes = cifar_bytes(4, true, 5);
  ssl::data::write_bytes(dir / "train.bin", bytes);
  const auto fine = ssl::data::load_cifar100(dir.str(), ssl::data::split::train);
  const auto coarse = ssl::data::load_cifar100(dir.str(), ssl::data::split::train, true);
  CHECK(fine.num_classes() == 100);
  CHECK(coarse.num_classes() == 20);
  CHECK(fine.label(3) == 21);
  CHECK(coarse.label(3) == 3);
  CHECK(fine.image(2).at(2, 31, 31) == float(bytes[2 * 3074 + 2 + 3071]) / 255.0f);
}

TEST_CASE("bad CIFAR files give a format_error naming the file and the fault") {
  ssl_test::temp_dir dir("cifar_bad");
  const std::string path = dir / "data_batch_1.bin";
  auto truncated = cifar_bytes(2, false, 1);
  truncated.pop_back();
  ssl::data::write_bytes(path, truncated);
  CHECK_THAT(message_of<ssl::format_error>([&] { ssl::data::load_cifar_batches({path}, ssl::data::cifar_format::cifar10); }),
             Catch::Contains(path) && Catch::Contains("not a positive multiple of the 3073-byte"));
  auto bad_label = cifar_bytes(2, false, 1);
  bad_label[3073] = 10;
  ssl::data::write_bytes(path, bad_label);
  CHECK_THAT(message_of<ssl::format_error>([&] { ssl::data::load_cifar_batches({path}, ssl::data::cifar_format::cifar10); }),
             Catch::Contains(path) && Catch::Contains("record 1 has label 10"));
  CHECK_THAT(message_of<ssl::io_error>([&] { ssl::data::load_cifar10(dir / "none", ssl::data::split::test); }),
             Catch::Contains("test_batch.bin"));
}
