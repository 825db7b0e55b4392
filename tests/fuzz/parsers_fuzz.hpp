#pragma once
// Fuzz smoke harness for every byte parser of ssl::data / ssl::io: gzip, IDX, CIFAR and the
// stb image decoders (PNG, JPEG baseline and progressive, BMP). Inputs are valid seeds, random bytes, and seeds mutated by bit flips,
// byte overwrites with boundary values, truncation, insertion, deletion and block copies.
// A parser passes when each input either parses or throws an ssl::error; anything else
// (another exception type, a crash, an AddressSanitizer / UBSan report) is a failure.
// Deterministic: the same (iterations, seed) feeds the same inputs.
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include <ssl/core/rng.hpp>
#include <ssl/data/cifar.hpp>
#include <ssl/data/gzip.hpp>
#include <ssl/data/idx.hpp>
#include <ssl/io/image.hpp>

#include "image_seeds.hpp"

namespace ssl_fuzz {

using bytes = std::vector<uint8_t>;

struct result {
  std::string parser;
  int64_t inputs = 0, accepted = 0, rejected = 0, failures = 0;
};

inline bytes idx_seed(ssl::rng& g) {
  const uint8_t n = uint8_t(1 + g.below(4)), h = uint8_t(1 + g.below(5)), w = uint8_t(1 + g.below(5));
  bytes b = {0, 0, 8, 3, 0, 0, 0, n, 0, 0, 0, h, 0, 0, 0, w};
  for (int k = 0; k < n * h * w; ++k) b.push_back(uint8_t(g.below(256)));
  return b;
}

inline bytes cifar_seed(ssl::rng& g, bool hundred) {
  bytes b;
  for (int r = 0; r < 2; ++r) {
    if (hundred) b.push_back(uint8_t(g.below(20)));
    b.push_back(uint8_t(g.below(hundred ? 100 : 10)));
    for (int k = 0; k < 3072; ++k) b.push_back(uint8_t(g.below(256)));
  }
  return b;
}

inline ssl::tensor<ssl::cpu> small_image(ssl::rng& g) {
  const int64_t c = 1 + g.below(4), h = 1 + g.below(9), w = 1 + g.below(9);
  ssl::tensor<ssl::cpu> t(ssl::shape{c, h, w});
  for (int64_t k = 0; k < t.numel(); ++k) t[k] = g.uniform();
  return t;
}

inline void bmp_append(void* ctx, void* data, int size) {
  auto* v = static_cast<bytes*>(ctx);
  v->insert(v->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
}

inline bytes image_seed(ssl::rng& g) {
  const auto t = small_image(g);
  switch (g.below(5)) {
    case 0: return ssl::io::encode_png(t);
    case 1: return ssl::io::encode_jpeg(t, 50 + int(g.below(50)));
    case 2:
    case 3: {  // progressive JPEG, palette / 16-bit PNG, palette BMP (made by Pillow)
      const auto& files = image_seed_files();
      return files[g.below(uint32_t(files.size()))];
    }
    default: {  // BMP through stb_image_write directly
      const int C = int(t.dim(0)), H = int(t.dim(1)), W = int(t.dim(2));
      std::vector<uint8_t> px(size_t(C * H * W));
      for (auto& p : px) p = uint8_t(g.below(256));
      bytes out;
      stbi_write_bmp_to_func(&bmp_append, &out, W, H, C, px.data());
      return out;
    }
  }
}

/// One mutation of `b` (may return an empty vector).
inline bytes mutate(bytes b, ssl::rng& g) {
  const int rounds = 1 + int(g.below(4));
  for (int r = 0; r < rounds; ++r) {
    const size_t n = b.size();
    switch (g.below(7)) {
      case 0:  // flip a bit
        if (n) b[g.below(uint32_t(n))] ^= uint8_t(1u << g.below(8));
        break;
      case 1: {  // boundary value
        static const uint8_t values[] = {0x00, 0x01, 0x7F, 0x80, 0xFF, 0x10, 0x08};
        if (n) b[g.below(uint32_t(n))] = values[g.below(7)];
        break;
      }
      case 2:  // truncate
        if (n) b.resize(g.below(uint32_t(n)));
        break;
      case 3: {  // insert random bytes
        const size_t at = n ? g.below(uint32_t(n + 1)) : 0;
        bytes extra(1 + g.below(16));
        for (auto& e : extra) e = uint8_t(g.below(256));
        b.insert(b.begin() + std::ptrdiff_t(at), extra.begin(), extra.end());
        break;
      }
      case 4:  // delete a range
        if (n > 1) {
          const size_t at = g.below(uint32_t(n)), len = 1 + g.below(uint32_t(std::min<size_t>(n - at, 32)));
          b.erase(b.begin() + std::ptrdiff_t(at), b.begin() + std::ptrdiff_t(at + len));
        }
        break;
      case 5:  // copy a block over another place
        if (n > 8) {
          const size_t len = 1 + g.below(uint32_t(std::min<size_t>(n / 2, 64)));
          const size_t from = g.below(uint32_t(n - len + 1)), to = g.below(uint32_t(n - len + 1));
          std::copy_n(b.begin() + std::ptrdiff_t(from), len, b.begin() + std::ptrdiff_t(to));
        }
        break;
      default:  // big-endian / little-endian 32-bit boundary word (sizes in headers)
        if (n >= 4) {
          static const uint32_t words[] = {0u, 1u, 0x7FFFFFFFu, 0x80000000u, 0xFFFFFFFFu, 0x10000u, 0xFFFFu};
          const uint32_t v = words[g.below(7)];
          const size_t at = g.below(uint32_t(n - 3));
          for (int k = 0; k < 4; ++k) b[at + size_t(k)] = uint8_t(v >> (8 * k));
        }
        break;
    }
  }
  return b;
}

/// Feeds `iterations` inputs from `seed_maker` (valid seeds, mutated seeds, random bytes) to `parse`.
inline result fuzz_one(const std::string& name, int64_t iterations, uint64_t seed,
                       const std::function<bytes(ssl::rng&)>& seed_maker,
                       const std::function<void(const bytes&)>& parse) {
  result r{name};
  ssl::rng g = ssl::rng(seed).fork(std::hash<std::string>{}(name) & 0xFFFFFFFF);
  for (int64_t it = 0; it < iterations; ++it) {
    bytes input;
    const uint32_t kind = g.below(10);
    if (kind == 0) {
      input = seed_maker(g);
    } else if (kind == 1) {
      input.resize(g.below(512));
      for (auto& x : input) x = uint8_t(g.below(256));
    } else {
      input = mutate(seed_maker(g), g);
    }
    ++r.inputs;
    try {
      parse(input);
      ++r.accepted;
    } catch (const ssl::error&) {
      ++r.rejected;
    } catch (const std::exception& e) {
      ++r.failures;
      std::fprintf(stderr, "%s: input %lld (%zu bytes) threw a non-ssl exception: %s\n", name.c_str(), (long long)it,
                   input.size(), e.what());
    }
  }
  return r;
}

/// All parsers, `iterations` inputs each.
inline std::vector<result> fuzz_all(int64_t iterations, uint64_t seed) {
  using namespace ssl::data;
  std::vector<result> out;
  out.push_back(fuzz_one("gzip", iterations, seed,
                         [](ssl::rng& g) { return gzip(idx_seed(g), 1 + int(g.below(9))); },
                         [](const bytes& b) { (void)gunzip(b, "fuzz.gz"); }));
  out.push_back(fuzz_one("idx", iterations, seed, idx_seed, [](const bytes& b) { (void)parse_idx(b, "fuzz.idx"); }));
  out.push_back(fuzz_one(
      "idx.gz", iterations, seed, [](ssl::rng& g) { return gzip(idx_seed(g)); },
      [](const bytes& b) { (void)parse_idx(gunzip(b, "fuzz.idx.gz"), "fuzz.idx.gz"); }));
  out.push_back(fuzz_one(
      "cifar10", iterations, seed, [](ssl::rng& g) { return cifar_seed(g, false); },
      [](const bytes& b) { (void)parse_cifar(b, cifar_format::cifar10, "fuzz.bin"); }));
  out.push_back(fuzz_one(
      "cifar100", iterations, seed, [](ssl::rng& g) { return cifar_seed(g, true); },
      [](const bytes& b) { (void)parse_cifar(b, cifar_format::cifar100_fine, "fuzz.bin"); }));
  out.push_back(fuzz_one("image", iterations, seed, image_seed, [](const bytes& b) {
    (void)ssl::io::decode_image(b, 0, "fuzz.img");
    (void)ssl::io::decode_image(b, 3, "fuzz.img");
  }));
  return out;
}

}  // namespace ssl_fuzz
