#include <catch2/catch.hpp>
#include <filesystem>
#include <ssl/data/image_folder.hpp>
#include <ssl/io/image.hpp>

#include "error_message.hpp"
#include "temp_dir.hpp"

using ssl::cpu;
using ssl::tensor;

namespace {
// (C, 3, 2) image with value k/255 at flat position k + offset
tensor<cpu> patterned(int64_t c, int offset) {
  tensor<cpu> t(ssl::shape{c, 3, 2});
  for (int64_t k = 0; k < t.numel(); ++k) t[k] = float((k * 13 + offset) % 256) / 255.0f;
  return t;
}
}  // namespace

TEST_CASE("image_folder: one sub-folder per class, sorted, labels by position") {
  ssl_test::temp_dir dir("imgfolder");
  namespace fs = std::filesystem;
  fs::create_directories(dir / "dog/nested");
  fs::create_directories(dir / "cat");
  fs::create_directories(dir / "empty");
  ssl::io::write_png(dir / "dog/b.png", patterned(3, 1));
  ssl::io::write_png(dir / "dog/nested/a.png", patterned(3, 2));
  ssl::io::write_png(dir / "cat/z.png", patterned(1, 3));
  ssl::data::write_bytes(dir / "cat/readme.txt", std::vector<uint8_t>{'x'});

  const ssl::data::image_folder f(dir.str(), 3);
  REQUIRE(f.size() == 3);
  CHECK(f.classes() == std::vector<std::string>{"cat", "dog"});
  CHECK(f.label(0) == 0);
  CHECK(f.label(1) == 1);
  CHECK(f.label(2) == 1);
  CHECK(f.path(1).ends_with("dog/b.png"));
  const auto grey_as_rgb = f.image(0);
  REQUIRE(grey_as_rgb.shape() == ssl::shape{3, 3, 2});
  CHECK(grey_as_rgb.at(2, 1, 1) == patterned(1, 3).at(0, 1, 1));  // grey replicated to RGB
  const auto rgb = f.image(2);
  CHECK(rgb.to_vector() == patterned(3, 2).to_vector());
}

TEST_CASE("image_folder: flat folder is unlabelled; corrupt files and empty folders are named") {
  ssl_test::temp_dir dir("imgflat");
  ssl::io::write_png(dir / "2.png", patterned(1, 0));
  ssl::io::write_png(dir / "1.PNG", patterned(1, 9));
  ssl::data::write_bytes(dir / "3.jpg", std::vector<uint8_t>{0xFF, 0xD8, 0xFF, 0x00, 0x12});
  const ssl::data::image_folder f(dir.str(), 0);
  REQUIRE(f.size() == 3);
  CHECK(!f.has_labels());
  CHECK(f.label(1) == ssl::data::no_label);
  CHECK(f.image(0).to_vector() == patterned(1, 9).to_vector());
  CHECK_THAT(ssl_test::message_of<ssl::format_error>([&] { f.image(2); }), Catch::Contains("3.jpg"));

  ssl_test::temp_dir none("imgnone");
  CHECK_THAT(ssl_test::message_of<ssl::io_error>([&] { ssl::data::image_folder g(none.str()); }),
             Catch::Contains(none.str()) && Catch::Contains("no image files"));
  CHECK_THROWS_AS(ssl::data::image_folder(none / "missing"), ssl::io_error);
}
