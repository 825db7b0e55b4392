#pragma once
// Whole-file byte IO with typed errors naming the file.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "../core/error.hpp"

namespace ssl::data {

using byte_vector = std::vector<uint8_t>;

/// All bytes of the file at `path`. Throws io_error naming the path when it cannot be read.
inline byte_vector read_bytes(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  check<io_error>(f != nullptr, "cannot open '", path, "' for reading");
  byte_vector out;
  if (std::fseek(f.get(), 0, SEEK_END) == 0) {
    const long n = std::ftell(f.get());
    if (n > 0) out.reserve(size_t(n));
    std::fseek(f.get(), 0, SEEK_SET);
  }
  uint8_t chunk[1 << 16];
  for (;;) {
    const size_t got = std::fread(chunk, 1, sizeof chunk, f.get());
    out.insert(out.end(), chunk, chunk + got);
    if (got < sizeof chunk) break;
  }
  check<io_error>(!std::ferror(f.get()), "error while reading '", path, "'");
  return out;
}

/// Writes `bytes` to `path` (replacing it). Throws io_error naming the path on failure.
inline void write_bytes(const std::string& path, std::span<const uint8_t> bytes) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
  check<io_error>(f != nullptr, "cannot open '", path, "' for writing");
  const size_t put = bytes.empty() ? 0 : std::fwrite(bytes.data(), 1, bytes.size(), f.get());
  check<io_error>(put == bytes.size(), "short write to '", path, "' (", put, " of ", bytes.size(), " bytes)");
  check<io_error>(std::fclose(f.release()) == 0, "cannot close '", path, "' after writing");
}

}  // namespace ssl::data
