// A short run of the parser fuzz harness in the ordinary suite (the long run, under ASan and
// UBSan, is scripts/fuzz_asan.sh): every input parses or throws a typed ssl::error.
#include <catch2/catch.hpp>
#include <fuzz/parsers_fuzz.hpp>

TEST_CASE("parsers survive random and mutated inputs with typed errors only") {
  const auto results = ssl_fuzz::fuzz_all(300, 7);
  REQUIRE(results.size() == 6);
  for (const auto& r : results) {
    INFO(r.parser);
    CHECK(r.inputs == 300);
    CHECK(r.failures == 0);
    CHECK(r.rejected > 0);  // the mutations do reach the error paths
    CHECK(r.accepted > 0);  // and valid seeds still parse
  }
}

TEST_CASE("the fuzz harness's seed images are valid and decode") {
  for (const auto& file : ssl_fuzz::image_seed_files()) {
    const auto img = ssl::io::decode_image(file, 0, "seed");
    CHECK(img.rank() == 3);
    CHECK(img.numel() > 0);
    CHECK(img.data()[0] >= 0.0f);
  }
}
