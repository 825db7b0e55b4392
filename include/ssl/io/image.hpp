#pragma once
// Image files <-> tensors (C, H, W) of floats in [0, 1], through stb_image.
//
// Reading: PNG, JPEG (baseline and progressive), BMP. 8 bits per channel in
// memory (16-bit PNGs are scaled down). Writing: PNG and JPEG.
// Hardening: Debian's stb_image (2.27) overflows a Huffman table on a JPEG whose DHT segment
// declares more than 256 codes (fixed upstream in 2.28); such files are rejected before stb
// sees them (detail::check_jpeg_huffman_tables).
// Pixel value v in 0..255 maps to v / 255; writing rounds clamp(x, 0, 1) * 255.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../data/bytes.hpp"
#include "../tensor/tensor.hpp"
#include "stb.hpp"

namespace ssl::io {

/// Largest image (width * height) the readers accept; larger headers are treated as corrupt.
inline constexpr int64_t max_image_pixels = int64_t(1) << 28;

namespace detail {
// The code count (sum of the 16 length counts) of every Huffman table stb would read, at most
// 256. Mirrors stb's reading: header segments are walked by their lengths up to the first
// SOS; after it, every FF C4 is taken as a DHT marker (in valid entropy-coded data FF is
// only followed by 00, RST or a marker, so this never rejects a valid file). Bytes past the
// end read as 0, as in stb.
inline void check_jpeg_huffman_tables(std::span<const uint8_t> b, const std::string& name) {
  const size_t n = b.size();
  auto at = [&](size_t i) -> unsigned { return i < n ? b[i] : 0u; };
  auto check_dht = [&](size_t pos) {  // pos: first byte after FF C4
    long remaining = long(at(pos) << 8 | at(pos + 1)) - 2;
    size_t p = pos + 2;
    while (remaining > 0) {
      unsigned codes = 0;
      for (size_t i = 1; i <= 16; ++i) codes += at(p + i);
      check<format_error>(codes <= 256, "image '", name, "': corrupt JPEG: Huffman table declares ", codes,
                          " codes, at most 256 are possible");
      p += 17 + codes;
      remaining -= long(17 + codes);
    }
  };
  size_t pos = 2;
  while (pos + 1 < n) {  // header markers, by length
    if (b[pos] != 0xFF) {  // stb skips padding between header segments byte by byte
      ++pos;
      continue;
    }
    unsigned m = b[pos + 1];
    while (m == 0xFF && pos + 2 < n) m = b[++pos + 1];  // fill bytes
    if (m == 0xDA) break;                                   // SOS: entropy-coded data follows
    if (m == 0xD9) return;
    if (m == 0xC4) check_dht(pos + 2);
    pos += 2 + (at(pos + 2) << 8 | at(pos + 3));
  }
  for (size_t i = pos; i + 1 < n; ++i)
    if (b[i] == 0xFF && b[i + 1] == 0xC4) check_dht(i + 2);
}
}  // namespace detail

/// Decodes an encoded image held in memory into (C, H, W) floats in [0, 1].
/// `channels` 0 keeps the file's channel count; 1 (grey), 2 (grey+alpha), 3 (RGB) or 4 (RGBA)
/// converts. `name` is used in error messages. Throws format_error on undecodable data.
inline tensor<cpu> decode_image(std::span<const uint8_t> bytes, int channels = 0, const std::string& name = "<memory>") {
  check<value_error>(channels >= 0 && channels <= 4, "decode_image('", name, "'): channels must be 0 (as stored) or 1..4, got ",
                     channels);
  check<format_error>(!bytes.empty() && bytes.size() < size_t(INT32_MAX), "image '", name, "': ",
                      bytes.empty() ? "empty file" : "larger than 2 GiB");
  if (bytes.size() >= 2 && bytes[0] == 0xFF && bytes[1] == 0xD8) detail::check_jpeg_huffman_tables(bytes, name);
  int w = 0, h = 0, c = 0;
  check<format_error>(stbi_info_from_memory(bytes.data(), int(bytes.size()), &w, &h, &c) != 0, "image '", name,
                      "': not a readable image (PNG, JPEG, BMP): ", stbi_failure_reason());
  check<format_error>(w > 0 && h > 0 && int64_t(w) * h <= max_image_pixels, "image '", name, "': header says ", w, "x", h,
                      " pixels, outside 1 .. ", max_image_pixels, " pixels");
  unsigned char* pixels = stbi_load_from_memory(bytes.data(), int(bytes.size()), &w, &h, &c, channels);
  check<format_error>(pixels != nullptr, "image '", name, "': corrupt or unsupported image data: ", stbi_failure_reason());
  const int C = channels ? channels : c;
  tensor<cpu> out(shape{C, h, w});
  // interleaved HWC bytes -> planar CHW floats
  const int64_t plane = int64_t(h) * w;
  float* dst = out.data();
  for (int64_t p = 0; p < plane; ++p)
    for (int ch = 0; ch < C; ++ch) dst[ch * plane + p] = float(pixels[p * C + ch]) / 255.0f;
  stbi_image_free(pixels);
  return out;
}

/// Reads the image file at `path` into (C, H, W) floats in [0, 1] (see decode_image).
/// Throws io_error when the file cannot be read, format_error when it cannot be decoded.
inline tensor<cpu> read_image(const std::string& path, int channels = 0) {
  return decode_image(data::read_bytes(path), channels, path);
}

namespace detail {
// (C, H, W) floats -> interleaved HWC bytes, rounding clamp(x, 0, 1) * 255.
inline std::vector<uint8_t> to_interleaved_bytes(const tensor<cpu>& image, const char* what) {
  check<shape_error>(image.rank() == 3, what, ": expected an image of shape (C, H, W), got shape ", image.shape());
  const int64_t C = image.dim(0), H = image.dim(1), W = image.dim(2);
  check<shape_error>(C >= 1 && C <= 4, what, ": expected 1 to 4 channels (grey, grey+alpha, RGB, RGBA), got ", C,
                     " in shape ", image.shape());
  check<shape_error>(H > 0 && W > 0 && H * W <= max_image_pixels, what, ": image size ", H, "x", W,
                     " outside 1 .. ", max_image_pixels, " pixels");
  std::vector<uint8_t> bytes(static_cast<size_t>(C * H * W));
  const int64_t plane = H * W;
  const float* src = image.data();
  for (int64_t p = 0; p < plane; ++p)
    for (int64_t ch = 0; ch < C; ++ch) {
      const float v = src[ch * plane + p];
      const float x = std::isnan(v) ? 0.0f : std::clamp(v, 0.0f, 1.0f);
      bytes[size_t(p * C + ch)] = uint8_t(std::lround(x * 255.0f));
    }
  return bytes;
}
inline void append_to_vector(void* ctx, void* data, int size) {
  auto* v = static_cast<std::vector<uint8_t>*>(ctx);
  const auto* p = static_cast<const uint8_t*>(data);
  v->insert(v->end(), p, p + size);
}
}  // namespace detail

/// PNG file bytes of an image (C, H, W) in [0, 1] (values are clamped), C = 1..4.
inline std::vector<uint8_t> encode_png(const tensor<cpu>& image) {
  const auto px = detail::to_interleaved_bytes(image, "encode_png");
  const int C = int(image.dim(0)), H = int(image.dim(1)), W = int(image.dim(2));
  std::vector<uint8_t> out;
  const int ok = stbi_write_png_to_func(&detail::append_to_vector, &out, W, H, C, px.data(), W * C);
  check<io_error>(ok != 0 && !out.empty(), "encode_png: stb_image_write failed for shape ", image.shape());
  return out;
}

/// JPEG file bytes of an image (C, H, W) in [0, 1], C = 1..4 (alpha is dropped), quality 1..100.
inline std::vector<uint8_t> encode_jpeg(const tensor<cpu>& image, int quality = 95) {
  check<value_error>(quality >= 1 && quality <= 100, "encode_jpeg: quality must be in 1..100, got ", quality);
  const auto px = detail::to_interleaved_bytes(image, "encode_jpeg");
  const int C = int(image.dim(0)), H = int(image.dim(1)), W = int(image.dim(2));
  std::vector<uint8_t> out;
  const int ok = stbi_write_jpg_to_func(&detail::append_to_vector, &out, W, H, C, px.data(), quality);
  check<io_error>(ok != 0 && !out.empty(), "encode_jpeg: stb_image_write failed for shape ", image.shape());
  return out;
}

/// Writes an image (C, H, W) in [0, 1] as a PNG file. Throws io_error naming the path on failure.
inline void write_png(const std::string& path, const tensor<cpu>& image) { data::write_bytes(path, encode_png(image)); }

/// Writes an image (C, H, W) in [0, 1] as a JPEG file.
inline void write_jpeg(const std::string& path, const tensor<cpu>& image, int quality = 95) {
  data::write_bytes(path, encode_jpeg(image, quality));
}

}  // namespace ssl::io
