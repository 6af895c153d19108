// The test server fixture itself: it answers, and databases made for tests are separate.

#include "support/postgres.h"

#include <gtest/gtest.h>

namespace driftless::test {
namespace {

TEST(TestPostgres, ServerAnswersAndTestDatabasesAreFresh) {
  std::string server = TestServerDsn();
  ASSERT_FALSE(server.empty());
  EXPECT_EQ(QueryValue(server, "SELECT current_setting('server_version_num')::int >= 150000"), "t");
  std::string a = CreateTestDatabase("fixture");
  std::string b = CreateTestDatabase("fixture");
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());
  EXPECT_NE(a, b);
  EXPECT_EQ(Execute(a, "CREATE TABLE t (x int); INSERT INTO t VALUES (1)"), "");
  EXPECT_EQ(QueryValue(a, "SELECT count(*) FROM t"), "1");
  EXPECT_NE(QueryValue(b, "SELECT count(*) FROM t").find("<error:"), std::string::npos);
}

}  // namespace
}  // namespace driftless::test
