#include "auth/token.h"

#include <gtest/gtest.h>
#include <openssl/rand.h>

#include <set>

#include "base/hash.h"

namespace driftless::auth {
namespace {

TEST(Token, GeneratedTokensHaveThePrefixAndHashToWhatIsStored) {
  std::set<std::string> seen;
  for (int i = 0; i < 50; ++i) {
    Result<GeneratedToken> t = GenerateToken();
    ASSERT_TRUE(t.ok()) << t.error().message;
    EXPECT_EQ(t->text.substr(0, 3), "dl_");
    EXPECT_EQ(t->text.size(), 3u + 43u);
    EXPECT_EQ(t->hash.size(), 64u);
    EXPECT_EQ(t->text.find_first_not_of(
                  "dl_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-"),
              std::string::npos);
    Result<std::string> hash = HashToken(t->text);
    ASSERT_TRUE(hash.ok()) << hash.error().message;
    EXPECT_EQ(*hash, t->hash);
    // The hash is of the 32 secret bytes, not of the text.
    std::string secret;
    ASSERT_TRUE(Base64UrlDecode(std::string_view(t->text).substr(3), &secret));
    EXPECT_EQ(secret.size(), 32u);
    EXPECT_EQ(Sha256Hex(secret), t->hash);
    EXPECT_TRUE(seen.insert(t->text).second);
  }
}

TEST(Token, MalformedTokensAreRefusedWithoutEchoingThem) {
  Result<GeneratedToken> t = GenerateToken();
  ASSERT_TRUE(t.ok());
  const std::string good = t->text;
  for (const std::string& bad :
       {std::string(""), std::string("dl_"), good.substr(3), "xx" + good.substr(2),
        good.substr(0, good.size() - 1), good + "A", good + " ", " " + good,
        good.substr(0, 10) + "+" + good.substr(11), good.substr(0, 10) + "=" + good.substr(11),
        std::string("Bearer ") + good}) {
    Result<std::string> h = HashToken(bad);
    ASSERT_FALSE(h.ok()) << bad;
    EXPECT_EQ(h.error().message.find(good.substr(3, 20)), std::string::npos);
    EXPECT_NE(h.error().message.find("not a driftless token"), std::string::npos);
  }
  // 43 characters carry 258 bits: the 2 past the 32nd byte must be zero, so that one secret has
  // one text.
  std::string secret(32, '\x01');
  std::string text = "dl_" + Base64UrlEncode(secret);
  ASSERT_TRUE(HashToken(text).ok());
  text.back() = static_cast<char>(text.back() + 1);
  EXPECT_FALSE(HashToken(text).ok());
}

TEST(Token, Base64UrlMatchesRfc4648AndRoundTrips) {
  EXPECT_EQ(Base64UrlEncode(""), "");
  EXPECT_EQ(Base64UrlEncode("f"), "Zg");
  EXPECT_EQ(Base64UrlEncode("fo"), "Zm8");
  EXPECT_EQ(Base64UrlEncode("foo"), "Zm9v");
  EXPECT_EQ(Base64UrlEncode("foob"), "Zm9vYg");
  EXPECT_EQ(Base64UrlEncode("fooba"), "Zm9vYmE");
  EXPECT_EQ(Base64UrlEncode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64UrlEncode("\xfb\xff\xbf"), "-_-_");
  for (size_t n = 0; n < 70; ++n) {
    std::string bytes(n, '\0');
    if (n > 0) {
      ASSERT_EQ(RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(n)), 1);
    }
    std::string back;
    ASSERT_TRUE(Base64UrlDecode(Base64UrlEncode(bytes), &back)) << n;
    EXPECT_EQ(back, bytes);
  }
  std::string out;
  EXPECT_FALSE(Base64UrlDecode("Z", &out));     // a lone character is not a byte
  EXPECT_FALSE(Base64UrlDecode("Zh", &out));    // stray bits past the byte
  EXPECT_FALSE(Base64UrlDecode("Zg==", &out));  // no padding
  EXPECT_FALSE(Base64UrlDecode("Z/", &out));    // not the URL alphabet
}

TEST(Token, ConstantTimeEqualsComparesWholeStrings) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
  EXPECT_FALSE(ConstantTimeEquals(std::string("a\0b", 3), std::string("a\0c", 3)));
}

}  // namespace
}  // namespace driftless::auth
