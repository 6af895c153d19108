#include "lazy/lazy.h"

#include <curl/curl.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace driftless::lazy {
namespace {

TEST(Lazy, AMissingLibraryEndsTheProcessNamingItAndItsPackage) {
  EXPECT_EXIT(Resolve("libdriftless-missing.so.9", "driftless-missing9", "f"),
              ::testing::ExitedWithCode(70),
              "cannot load libdriftless-missing.so.9, which this command needs \\(package "
              "driftless-missing9\\)");
  EXPECT_EXIT(Resolve("libpq.so.5", "libpq5", "PQnoSuchFunction"), ::testing::ExitedWithCode(70),
              "libpq.so.5 has no function PQnoSuchFunction");
}

// The stubs reach the real libpq: a connection string is parsed without any server.
TEST(Lazy, LibpqCallsReachTheLibrary) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse("host=db.example port=6543 user=u", &error);
  ASSERT_NE(options, nullptr) << (error ? error : "");
  std::string port;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (std::string(o->keyword) == "port" && o->val != nullptr) port = o->val;
  }
  PQconninfoFree(options);
  EXPECT_EQ(port, "6543");
  EXPECT_EQ(PQconninfoParse("host=x nonsense", &error), nullptr);
  ASSERT_NE(error, nullptr);
  EXPECT_NE(std::string(error).find("nonsense"), std::string::npos) << error;
  PQfreemem(error);
}

size_t Collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// Every kind of argument the variadic curl_easy_setopt and curl_easy_getinfo take (a long, a
// pointer, a function, a curl_off_t) arrives as it was passed: a file:// URL, no network.
TEST(Lazy, CurlCallsReachTheLibraryWithEveryKindOfArgument) {
  const std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("dl_lazy_test_" + std::to_string(getpid()));
  std::ofstream(path) << "twelve bytes";
  ASSERT_EQ(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
  CURL* curl = curl_easy_init();
  ASSERT_NE(curl, nullptr);
  std::string body;
  const std::string url = "file://" + path.string();
  EXPECT_EQ(curl_easy_setopt(curl, CURLOPT_URL, url.c_str()), CURLE_OK);
  EXPECT_EQ(curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Collect), CURLE_OK);
  EXPECT_EQ(curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body), CURLE_OK);
  EXPECT_EQ(curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 60000L), CURLE_OK);
  EXPECT_EQ(curl_easy_perform(curl), CURLE_OK);
  EXPECT_EQ(body, "twelve bytes");
  curl_off_t size = 0;
  EXPECT_EQ(curl_easy_getinfo(curl, CURLINFO_SIZE_DOWNLOAD_T, &size), CURLE_OK);
  EXPECT_EQ(size, 12);
  // Resumed from byte 7: the off_t argument was read as one.
  curl_easy_reset(curl);
  body.clear();
  EXPECT_EQ(curl_easy_setopt(curl, CURLOPT_URL, url.c_str()), CURLE_OK);
  EXPECT_EQ(curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Collect), CURLE_OK);
  EXPECT_EQ(curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body), CURLE_OK);
  EXPECT_EQ(curl_easy_setopt(curl, CURLOPT_RESUME_FROM_LARGE, static_cast<curl_off_t>(7)),
            CURLE_OK);
  EXPECT_EQ(curl_easy_perform(curl), CURLE_OK);
  EXPECT_EQ(body, "bytes");
  EXPECT_STRNE(curl_easy_strerror(CURLE_FILESIZE_EXCEEDED), "");
  curl_easy_cleanup(curl);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace driftless::lazy
