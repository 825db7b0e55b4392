#pragma once
// A fresh folder under the system temp dir, removed with its contents at scope exit.
#include <filesystem>
#include <string>
#include <unistd.h>

namespace ssl_test {

class temp_dir {
 public:
  explicit temp_dir(const std::string& tag)
      : path_(std::filesystem::temp_directory_path() / ("ssl_test_" + tag + "_" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  /// path of `name` inside the folder
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace ssl_test
