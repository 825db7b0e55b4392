#include <catch2/catch.hpp>
#include <ssl/core/rng.hpp>
#include <ssl/data/gzip.hpp>
#include <string>

#include "error_message.hpp"
#include "temp_dir.hpp"

using ssl::data::byte_vector;

namespace {
byte_vector random_bytes(size_t n, uint64_t seed, uint32_t alphabet = 256) {
  ssl::rng g(seed);
  byte_vector v(n);
  for (auto& b : v) b = uint8_t(g.below(alphabet));
  return v;
}
byte_vector text(const std::string& s) { return byte_vector(s.begin(), s.end()); }
}  // namespace
using ssl_test::message_of;

TEST_CASE("crc32 matches the standard check value") {
  CHECK(ssl::data::crc32(text("123456789")) == 0xCBF43926u);
  CHECK(ssl::data::crc32(text("")) == 0u);
  CHECK(ssl::data::crc32(text("The quick brown fox jumps over the lazy dog")) == 0x414FA339u);
  // continuing a CRC over a split input gives the CRC of the whole
  const auto all = random_bytes(1001, 3);
  const uint32_t head = ssl::data::crc32(std::span(all).first(333));
  CHECK(ssl::data::crc32(std::span(all).subspan(333), head) == ssl::data::crc32(all));
}

TEST_CASE("gzip round-trips data of many sizes and entropies") {
  for (size_t n : {size_t(0), size_t(1), size_t(17), size_t(4096), size_t(100000)}) {
    for (uint32_t alphabet : {2u, 256u}) {
      const auto data = random_bytes(n, n + alphabet, alphabet);
      const auto gz = ssl::data::gzip(data);
      CHECK(ssl::data::is_gzip(gz));
      CHECK(ssl::data::gunzip(gz) == data);
    }
  }
}

TEST_CASE("gunzip reads a member with FEXTRA, FNAME, FCOMMENT and FHCRC") {
  const auto data = text("hello, header fields");
  const auto plain = ssl::data::gzip(data);
  byte_vector m = {0x1f, 0x8b, 8, 4 | 8 | 16 | 2, 1, 2, 3, 4, 0, 3};
  m.insert(m.end(), {3, 0, 'a', 'b', 'c'});        // FEXTRA, XLEN = 3
  m.insert(m.end(), {'f', '.', 't', 'x', 't', 0});  // FNAME
  m.insert(m.end(), {'h', 'i', 0});                 // FCOMMENT
  const uint32_t hcrc = ssl::data::crc32(m);
  m.push_back(uint8_t(hcrc));
  m.push_back(uint8_t(hcrc >> 8));
  m.insert(m.end(), plain.begin() + 10, plain.end());  // deflate data + trailer
  CHECK(ssl::data::gunzip(m) == data);

  m[12] ^= 1;  // corrupt a covered header byte: the header CRC must catch it
  const auto msg = message_of<ssl::format_error>([&] { ssl::data::gunzip(m, "hdr.gz"); });
  CHECK_THAT(msg, Catch::Contains("hdr.gz") && Catch::Contains("header CRC"));
}

TEST_CASE("gunzip rejects bad input with a format_error naming the file and the fault") {
  const auto data = random_bytes(5000, 9, 16);
  const auto good = ssl::data::gzip(data);
  REQUIRE(ssl::data::gunzip(good) == data);

  auto wrong_magic = good;
  wrong_magic[1] = 0x8c;
  CHECK_THAT(message_of<ssl::format_error>([&] { ssl::data::gunzip(wrong_magic, "a.gz"); }),
             Catch::Contains("a.gz") && Catch::Contains("wrong magic"));

  auto wrong_method = good;
  wrong_method[2] = 7;
  CHECK_THAT(message_of<ssl::format_error>([&] { ssl::data::gunzip(wrong_method, "b.gz"); }),
             Catch::Contains("b.gz") && Catch::Contains("compression method 7"));

  const byte_vector truncated(good.begin(), good.begin() + std::ptrdiff_t(good.size() / 2));
  CHECK_THAT(message_of<ssl::format_error>([&] { ssl::data::gunzip(truncated, "c.gz"); }), Catch::Contains("c.gz"));

  CHECK_THAT(message_of<ssl::format_error>([&] { ssl::data::gunzip(byte_vector{0x1f, 0x8b, 8}, "d.gz"); }),
             Catch::Contains("d.gz") && Catch::Contains("truncated"));

  auto bad_crc = good;
  bad_crc[bad_crc.size() - 8] ^= 0x40;
  CHECK_THAT(message_of<ssl::format_error>([&] { ssl::data::gunzip(bad_crc, "e.gz"); }),
             Catch::Contains("e.gz") && Catch::Contains("CRC-32 mismatch"));

  auto bad_size = good;
  bad_size[bad_size.size() - 4] ^= 0x01;
  CHECK_THAT(message_of<ssl::format_error>([&] { ssl::data::gunzip(bad_size, "f.gz"); }),
             Catch::Contains("f.gz") && Catch::Contains("ISIZE"));
}

TEST_CASE("read_maybe_gzip reads plain and compressed files; a missing file is an io_error") {
  ssl_test::temp_dir dir("gzip");
  const auto data = random_bytes(3000, 5, 8);
  ssl::data::write_bytes(dir / "x.bin", data);
  ssl::data::write_bytes(dir / "x.bin.gz", ssl::data::gzip(data));
  CHECK(ssl::data::read_maybe_gzip(dir / "x.bin") == data);
  CHECK(ssl::data::read_maybe_gzip(dir / "x.bin.gz") == data);
  const auto msg = message_of<ssl::io_error>([&] { ssl::data::read_bytes(dir / "missing.gz"); });
  CHECK_THAT(msg, Catch::Contains("missing.gz"));
}
