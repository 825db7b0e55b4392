#pragma once
// gzip (RFC 1952) without zlib: the header is parsed here, the raw deflate stream is
// inflated by stb_image's decoder, and the trailer (CRC-32 and ISIZE) is verified.
//
//   member = 1f 8b | CM=8 | FLG | MTIME(4) | XFL | OS | [FEXTRA: XLEN(2) + XLEN bytes]
//            [FNAME: zero-terminated] [FCOMMENT: zero-terminated] [FHCRC: 2 bytes]
//            deflate data | CRC32(4, little-endian) | ISIZE(4, little-endian: size mod 2^32)
// Only single-member files are read (what gzip(1) and Python write).
#include <array>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../io/stb.hpp"
#include "bytes.hpp"

namespace ssl::data {

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320) as used by gzip and PNG.
/// `crc` continues a previous value (start with 0).
inline uint32_t crc32(std::span<const uint8_t> bytes, uint32_t crc = 0) {
  // slicing-by-4 tables, built once
  static const auto tables = [] {
    std::array<std::array<uint32_t, 256>, 4> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i)
      for (int s = 1; s < 4; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFFu];
    return t;
  }();
  crc = ~crc;
  const uint8_t* p = bytes.data();
  size_t n = bytes.size();
  for (; n >= 4; n -= 4, p += 4) {
    crc ^= uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
    crc = tables[3][crc & 0xFFu] ^ tables[2][(crc >> 8) & 0xFFu] ^ tables[1][(crc >> 16) & 0xFFu] ^ tables[0][crc >> 24];
  }
  for (; n > 0; --n, ++p) crc = tables[0][(crc ^ *p) & 0xFFu] ^ (crc >> 8);
  return ~crc;
}

/// True when `bytes` starts with the gzip magic 1f 8b.
inline bool is_gzip(std::span<const uint8_t> bytes) { return bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b; }

/// Inflates a gzip member held in memory. `name` (usually the file path) is used in error
/// messages. Throws format_error naming `name` and what was wrong.
inline byte_vector gunzip(std::span<const uint8_t> in, const std::string& name = "<memory>") {
  constexpr uint8_t ftext = 1, fhcrc = 2, fextra = 4, fname = 8, fcomment = 16;
  const size_t n = in.size();
  check<format_error>(n >= 18, "gzip '", name, "': truncated: ", n, " bytes, a gzip file has at least 18");
  check<format_error>(is_gzip(in), "gzip '", name, "': wrong magic: expected 1f 8b, found ", std::hex, int(in[0]), " ",
                      int(in[1]));
  check<format_error>(in[2] == 8, "gzip '", name, "': compression method ", int(in[2]), ", expected 8 (deflate)");
  const uint8_t flags = in[3];
  check<format_error>((flags & 0xE0) == 0, "gzip '", name, "': reserved flag bits set (FLG = ", int(flags), ")");
  (void)ftext;
  size_t pos = 10;
  const size_t trailer = n - 8;  // deflate data ends here
  if (flags & fextra) {
    check<format_error>(pos + 2 <= trailer, "gzip '", name, "': truncated in the FEXTRA length");
    const size_t xlen = size_t(in[pos]) | size_t(in[pos + 1]) << 8;
    pos += 2;
    check<format_error>(pos + xlen <= trailer, "gzip '", name, "': FEXTRA field of ", xlen, " bytes runs past the end");
    pos += xlen;
  }
  for (uint8_t f : {fname, fcomment}) {
    if (flags & f) {
      while (pos < trailer && in[pos] != 0) ++pos;
      check<format_error>(pos < trailer, "gzip '", name, "': unterminated ", f == fname ? "FNAME" : "FCOMMENT", " field");
      ++pos;
    }
  }
  if (flags & fhcrc) {
    check<format_error>(pos + 2 <= trailer, "gzip '", name, "': truncated in the header CRC");
    const uint32_t want = uint32_t(in[pos]) | uint32_t(in[pos + 1]) << 8;
    const uint32_t got = crc32(in.first(pos)) & 0xFFFFu;
    check<format_error>(want == got, "gzip '", name, "': header CRC mismatch: stored ", want, ", computed ", got);
    pos += 2;
  }
  auto le32 = [&](size_t at) {
    return uint32_t(in[at]) | uint32_t(in[at + 1]) << 8 | uint32_t(in[at + 2]) << 16 | uint32_t(in[at + 3]) << 24;
  };
  const uint32_t stored_crc = le32(trailer), stored_size = le32(trailer + 4);
  const size_t deflate_len = trailer - pos;
  // Deflate cannot expand data by more than ~1032:1; a larger ISIZE means a corrupt trailer
  // (and we refuse to allocate for it).
  check<format_error>(double(stored_size) <= 1032.0 * double(deflate_len) + 64.0, "gzip '", name, "': trailer says ",
                      stored_size, " bytes uncompressed, impossible from ", deflate_len,
                      " bytes of deflate data (truncated or corrupt file)");
  check<format_error>(deflate_len < size_t(INT32_MAX) && stored_size < uint32_t(INT32_MAX), "gzip '", name,
                      "': larger than 2 GiB, not supported");
  byte_vector out(size_t(stored_size) + 1);  // one spare byte: decoding past ISIZE is detected
  // The input handed to stb runs on over the 8-byte trailer: this stb version reports
  // "bad huffman code" when fewer than 16 bits remain after the final code of a stream
  // that ends exactly at the buffer's end (fixed upstream in stb_image 2.28).
  const int got = stbi_zlib_decode_noheader_buffer(reinterpret_cast<char*>(out.data()), int(out.size()),
                                                   reinterpret_cast<const char*>(in.data() + pos), int(n - pos));
  check<format_error>(got >= 0, "gzip '", name, "': corrupt deflate stream (", stbi_failure_reason(),
                      "), or more than the ", stored_size, " bytes the trailer announces (truncated or corrupt file)");
  check<format_error>(uint32_t(got) == stored_size, "gzip '", name, "': inflated ", got,
                      " bytes but the trailer says ISIZE = ", stored_size, " (truncated or corrupt file)");
  out.resize(size_t(got));
  const uint32_t crc = crc32(out);
  check<format_error>(crc == stored_crc, "gzip '", name, "': CRC-32 mismatch: trailer says ", stored_crc,
                      ", data gives ", crc, " (corrupt file)");
  return out;
}

/// The bytes of `path`, inflated when the file is gzip-compressed (magic 1f 8b), as is otherwise.
inline byte_vector read_maybe_gzip(const std::string& path) {
  byte_vector raw = read_bytes(path);
  if (is_gzip(raw)) return gunzip(raw, path);
  return raw;
}

/// A single-member gzip file holding `data` (deflate by stb_image_write; header: no flags,
/// MTIME 0, OS 255). `level` 1..9 trades speed for size.
inline byte_vector gzip(std::span<const uint8_t> data, int level = 6) {
  check<value_error>(data.size() < size_t(INT32_MAX), "gzip: input of ", data.size(), " bytes exceeds 2 GiB");
  const uint8_t header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255};
  if (data.empty())  // stb writes no block at all for empty input; a final empty fixed block is 03 00
    return {header[0], header[1], header[2], header[3], header[4], header[5], header[6], header[7], header[8], header[9],
            0x03, 0x00, 0, 0, 0, 0, 0, 0, 0, 0};
  int zlen = 0;
  // stbi_zlib_compress writes a zlib stream: 2-byte header, raw deflate, 4-byte Adler-32.
  unsigned char* z = stbi_zlib_compress(const_cast<unsigned char*>(data.data()), int(data.size()), &zlen, level);
  check<value_error>(z != nullptr && zlen >= 6, "gzip: deflate failed");
  byte_vector out(10 + size_t(zlen - 6) + 8);
  std::memcpy(out.data(), header, 10);
  std::memcpy(out.data() + 10, z + 2, size_t(zlen - 6));
  out.resize(10 + size_t(zlen - 6));
  STBIW_FREE(z);
  const uint32_t crc = crc32(data), size = uint32_t(data.size());
  for (int s = 0; s < 32; s += 8) out.push_back(uint8_t(crc >> s));
  for (int s = 0; s < 32; s += 8) out.push_back(uint8_t(size >> s));
  return out;
}

}  // namespace ssl::data
