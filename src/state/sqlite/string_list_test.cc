#include "state/sqlite/string_list.h"

#include <gtest/gtest.h>

namespace driftless::state::sqlite_detail {
namespace {

TEST(StringList, RoundTrips) {
  std::vector<std::vector<std::string>> cases = {
      {},
      {"file.file/motd"},
      {"a", "", "with \"quotes\" and \\ backslash", "tab\tnew\nline\r", std::string("\x01\x1f", 2),
       "caf\xc3\xa9 \xf0\x9f\x9a\x80"},
  };
  for (const auto& items : cases) {
    std::string json = EncodeStringList(items);
    std::vector<std::string> back = {"stale"};
    ASSERT_TRUE(DecodeStringList(json, &back)) << json;
    EXPECT_EQ(back, items) << json;
  }
  EXPECT_EQ(EncodeStringList({}), "[]");
  EXPECT_EQ(EncodeStringList({"a", "b"}), R"(["a","b"])");
}

TEST(StringList, ReadsAnyJsonArrayOfStrings) {
  std::vector<std::string> out;
  ASSERT_TRUE(DecodeStringList(R"( [ "a" , "b\/c", "\u00e9\ud83d\ude80" ] )", &out));
  EXPECT_EQ(out, (std::vector<std::string>{"a", "b/c", "\xc3\xa9\xf0\x9f\x9a\x80"}));
  ASSERT_TRUE(DecodeStringList(" [ ] ", &out));
  EXPECT_TRUE(out.empty());
}

TEST(StringList, RejectsEverythingElse) {
  std::vector<std::string> out;
  for (const char* bad : {"", "[", "]", "[1]", "[\"a\",]", "[\"a\"", "[\"a\" \"b\"]", "{}",
                          "[\"a\"] x", "[\"\\x\"]", "[\"\\ud800\"]", "[\"\\u12\"]", "null"}) {
    EXPECT_FALSE(DecodeStringList(bad, &out)) << bad;
  }
}

}  // namespace
}  // namespace driftless::state::sqlite_detail
