#pragma once
// safetensors files (https://github.com/huggingface/safetensors), float32 only:
//   [8 bytes: header length N, little-endian u64][N bytes: JSON header][data]
//   header = {"<name>": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...,
//             "__metadata__": {"<key>": "<string value>", ...}}
// Offsets are relative to the start of the data; the tensors tile the data without gaps.
// Writing is atomic: "<path>.tmp.<pid>" is written, flushed, fsync'ed, then renamed over <path>.
// Reading checks everything and throws ssl::format_error naming the file and the problem.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "../tensor/tensor.hpp"

namespace ssl {

static_assert(std::endian::native == std::endian::little, "ssl safetensors io assumes a little-endian host");

/// Named tensors, in order (also declared, identically, by ssl/optim/optimizer.hpp).
using named_tensors = std::vector<std::pair<std::string, tensor<cpu>>>;

/// The content of a safetensors file: tensors in data order, and the string metadata.
struct safetensors_content {
  named_tensors tensors;
  std::map<std::string, std::string> metadata;

  /// The tensor called `name`; throws value_error if there is none.
  const tensor<cpu>& at(const std::string& name) const {
    for (const auto& [n, t] : tensors)
      if (n == name) return t;
    throw value_error("safetensors: no tensor named '" + name + "'");
  }
};

namespace detail {

/// Writes `bytes` to `path` atomically: temp file, flush, fsync, rename, fsync of the folder.
inline void write_file_atomically(const std::string& path, const std::vector<char>& bytes) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  check<io_error>(fd >= 0, "cannot create '", tmp, "': ", std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw io_error(detail::concat("cannot write '", tmp, "': ", std::strerror(err)));
    }
    done += size_t(w);
  }
  const bool synced = ::fsync(fd) == 0;
  const bool closed = ::close(fd) == 0;
  if (!synced || !closed) {
    ::unlink(tmp.c_str());
    throw io_error(detail::concat("cannot flush '", tmp, "' to disk: ", std::strerror(errno)));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw io_error(detail::concat("cannot rename '", tmp, "' to '", path, "': ", std::strerror(err)));
  }
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);  // best effort: makes the rename durable
    ::close(dfd);
  }
}

inline std::vector<char> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  check<io_error>(bool(in), "cannot open '", path, "' for reading");
  const std::streamsize size = in.tellg();
  std::vector<char> bytes(size_t(std::max<std::streamsize>(size, 0)));
  in.seekg(0);
  check<io_error>(size >= 0 && bool(in.read(bytes.data(), size)), "cannot read '", path, "'");
  return bytes;
}

}  // namespace detail

/// Serialises tensors (and string metadata) to safetensors bytes, in the given order.
inline std::vector<char> to_safetensors(const named_tensors& tensors, const std::map<std::string, std::string>& metadata = {}) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    check(!name.empty() && name != "__metadata__", "safetensors: invalid tensor name '", name, "'");
    check(names.insert(name).second, "safetensors: duplicate tensor name '", name, "'");
    const uint64_t bytes = uint64_t(t.numel()) * sizeof(float);
    header[name] = {{"dtype", "F32"},
                    {"shape", std::vector<int64_t>(t.shape().begin(), t.shape().end())},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // pad so the data starts 8-byte aligned
  std::vector<char> out(8 + text.size() + offset);
  const uint64_t n = text.size();
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, text.data(), text.size());
  char* data = out.data() + 8 + text.size();
  for (const auto& [name, t] : tensors) {
    if (t.numel()) std::memcpy(data, t.data(), size_t(t.numel()) * sizeof(float));
    data += t.numel() * int64_t(sizeof(float));
  }
  return out;
}

/// Parses safetensors bytes; `what` names the source in errors (usually the file path).
inline safetensors_content from_safetensors(const std::vector<char>& bytes, const std::string& what = "<memory>") {
  auto fail = [&](auto&&... parts) { return format_error(detail::concat("safetensors file '", what, "': ", parts...)); };
  if (bytes.size() < 8) throw fail("truncated: ", bytes.size(), " bytes, expected at least the 8-byte header length");
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  const uint64_t avail = bytes.size() - 8;
  if (header_len > avail)
    throw fail("header length ", header_len, " exceeds the ", avail, " bytes after the length field (truncated file?)");
  nlohmann::ordered_json header;
  try {
    header = nlohmann::ordered_json::parse(bytes.begin() + 8, bytes.begin() + 8 + std::ptrdiff_t(header_len));
  } catch (const nlohmann::json::exception& e) {
    throw fail("header is not valid JSON (", e.what(), ")");
  }
  if (!header.is_object()) throw fail("header is not a JSON object");
  const char* data = bytes.data() + 8 + header_len;
  const uint64_t data_size = avail - header_len;

  safetensors_content out;
  struct entry {
    uint64_t begin, end;
    std::string name;
    shape s;
  };
  std::vector<entry> entries;
  for (const auto& [name, e] : header.items()) {
    if (name == "__metadata__") {
      if (!e.is_object()) throw fail("__metadata__ is not an object");
      for (const auto& [k, v] : e.items()) {
        if (!v.is_string()) throw fail("__metadata__ value of '", k, "' is not a string");
        out.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    if (!e.is_object()) throw fail("entry '", name, "' is not an object");
    if (!e.contains("dtype") || !e["dtype"].is_string()) throw fail("entry '", name, "' has no dtype");
    const std::string dtype = e["dtype"].get<std::string>();
    if (dtype != "F32") throw fail("tensor '", name, "' has dtype ", dtype, ", expected F32");
    if (!e.contains("shape") || !e["shape"].is_array()) throw fail("tensor '", name, "' has no shape array");
    if (e["shape"].size() > size_t(shape::max_rank))
      throw fail("tensor '", name, "' has rank ", e["shape"].size(), ", at most ", shape::max_rank, " supported");
    shape s;
    uint64_t numel = 1;
    for (const auto& d : e["shape"]) {
      if (!d.is_number_unsigned()) throw fail("tensor '", name, "' has a shape entry that is not a non-negative integer");
      const uint64_t v = d.get<uint64_t>();
      if (v > (uint64_t(1) << 40) || (v && numel > (uint64_t(1) << 40) / v))
        throw fail("tensor '", name, "' has an implausibly large shape");
      numel *= v;
      s.push_back(int64_t(v));
    }
    const auto& off = e.contains("data_offsets") ? e["data_offsets"] : nlohmann::ordered_json();
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      throw fail("tensor '", name, "' needs data_offsets [begin, end] of non-negative integers");
    const uint64_t b = off[0].get<uint64_t>(), en = off[1].get<uint64_t>();
    if (b > en || en > data_size)
      throw fail("tensor '", name, "' has data_offsets [", b, ", ", en, "] outside the ", data_size,
                 " data bytes (truncated file?)");
    if (en - b != numel * sizeof(float))
      throw fail("tensor '", name, "' of shape ", s, " needs ", numel * sizeof(float), " bytes, its offsets span ",
                 en - b);
    entries.push_back({b, en, name, s});
  }
  std::stable_sort(entries.begin(), entries.end(), [](const entry& a, const entry& b) { return a.begin < b.begin; });
  uint64_t expected_begin = 0;
  for (const auto& en : entries) {
    if (en.begin != expected_begin)
      throw fail("tensor '", en.name, "' starts at byte ", en.begin, ", expected ", expected_begin,
                 " (data must be tiled without gaps or overlaps)");
    expected_begin = en.end;
  }
  if (expected_begin != data_size)
    throw fail("the tensors cover ", expected_begin, " data bytes but the file holds ", data_size);
  for (const auto& en : entries) {
    tensor<cpu> t(en.s);
    if (t.numel()) std::memcpy(t.data(), data + en.begin, size_t(en.end - en.begin));
    out.tensors.emplace_back(en.name, std::move(t));
  }
  return out;
}

/// Writes tensors and metadata to `path` atomically.
inline void save_safetensors(const std::string& path, const named_tensors& tensors,
                             const std::map<std::string, std::string>& metadata = {}) {
  detail::write_file_atomically(path, to_safetensors(tensors, metadata));
}

/// Reads a safetensors file (F32 tensors only); throws io_error if it cannot be read and
/// format_error naming the file and the problem if it is malformed.
inline safetensors_content load_safetensors(const std::string& path) {
  return from_safetensors(detail::read_file(path), path);
}

}  // namespace ssl
