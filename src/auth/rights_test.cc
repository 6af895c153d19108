#include "auth/rights.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "auth/token.h"
#include "auth/tokens.h"
#include "state/sqlite/sqlite_state_store.h"

namespace driftless::auth {
namespace {

state::Token Tok(const std::string& role, const std::string& envs = "**") {
  state::Token t;
  t.name = "t-" + role;
  t.role = role;
  t.envs = envs;
  t.hash = std::string(64, 'a');
  t.created_at = 100;
  return t;
}

TEST(Rights, RolesGrantTheDocumentedRights) {
  // Columns: read plan approve apply destroy unlock tokens; unprotected, then protected.
  struct Row {
    const char* role;
    const char* unprotected;
    const char* protected_env;
  };
  const Row kTable[] = {
      {"viewer", "1000000", "1000000"},
      {"editor", "1111100", "1110000"},
      {"admin", "1111111", "1111111"},
      {"root", "0000000", "0000000"},
  };
  for (const Row& row : kTable) {
    for (size_t i = 0; i < AllRights().size(); ++i) {
      const Right r = AllRights()[i];
      EXPECT_EQ(RoleGrants(row.role, r, false), row.unprotected[i] == '1')
          << row.role << " " << RightName(r);
      EXPECT_EQ(RoleGrants(row.role, r, true), row.protected_env[i] == '1')
          << row.role << " " << RightName(r) << " (protected)";
    }
  }
  for (Right r : AllRights()) EXPECT_EQ(ParseRight(RightName(r)), r);
  EXPECT_FALSE(ParseRight("sudo"));
  EXPECT_TRUE(CheckRole("editor").ok());
  EXPECT_EQ(CheckRole("root").error().message, "role \"root\" is not viewer, editor or admin");
}

TEST(Rights, AuthorizeSaysWhyARequestIsRefused) {
  Decision d = Authorize(Tok("editor"), Right::kApply, "staging", false, 200);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.reason, "");

  d = Authorize(Tok("viewer"), Right::kPlan, "staging", false, 200);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.reason, "token t-viewer is viewer, which does not grant plan");

  d = Authorize(Tok("editor"), Right::kApply, "production", true, 200);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.reason,
            "environment production is protected: apply needs an admin token (token t-editor is "
            "editor)");
  EXPECT_TRUE(Authorize(Tok("editor"), Right::kApprove, "production", true, 200).allowed);
  EXPECT_TRUE(Authorize(Tok("admin"), Right::kDestroy, "production", true, 200).allowed);

  d = Authorize(Tok("admin", "team/*"), Right::kRead, "team/a/b", false, 200);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.reason, "token t-admin is limited to environments team/*, not team/a/b");
  EXPECT_TRUE(Authorize(Tok("admin", "team/**"), Right::kRead, "team/a/b", false, 200).allowed);
  // Requests about no one environment skip the glob, but tokens need an unscoped admin.
  EXPECT_TRUE(Authorize(Tok("viewer", "team/*"), Right::kRead, "", false, 200).allowed);
  d = Authorize(Tok("admin", "team/**"), Right::kTokens, "", false, 200);
  EXPECT_FALSE(d.allowed);
  EXPECT_NE(d.reason.find("managing tokens needs an admin token for every environment"),
            std::string::npos);
  EXPECT_TRUE(Authorize(Tok("admin"), Right::kTokens, "", false, 200).allowed);
  EXPECT_FALSE(Authorize(Tok("editor"), Right::kTokens, "", false, 200).allowed);

  state::Token revoked = Tok("admin");
  revoked.revoked_at = 150;
  d = Authorize(revoked, Right::kRead, "staging", false, 200);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.reason, "token t-admin is revoked");
  state::Token expiring = Tok("admin");
  expiring.expires_at = 200;
  EXPECT_TRUE(Authorize(expiring, Right::kRead, "staging", false, 199).allowed);
  d = Authorize(expiring, Right::kRead, "staging", false, 200);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.reason, "token t-admin expired at 1970-01-01T00:03:20Z");
}

class AuthenticateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "dl-auth-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    auto store = state::SqliteStateStore::Open(dir_ + "/state.db");
    ASSERT_TRUE(store.ok()) << store.error().message;
    store_ = std::move(*store);
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string dir_;
  std::unique_ptr<state::SqliteStateStore> store_;
};

TEST_F(AuthenticateTest, AcceptsLiveTokensOnly) {
  TokenRequest req;
  req.name = "ci";
  req.role = "editor";
  req.ttl_seconds = 3600;
  req.now = 1000;
  Result<CreatedToken> made = CreateApiToken(*store_, req);
  ASSERT_TRUE(made.ok()) << made.error().message;

  Result<Authentication> a = Authenticate(*store_, made->text, 2000);
  ASSERT_TRUE(a.ok()) << a.error().message;
  ASSERT_TRUE(a->token);
  EXPECT_EQ(a->token->name, "ci");
  EXPECT_EQ(a->token->role, "editor");

  a = Authenticate(*store_, made->text, 4600);
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->token);
  EXPECT_EQ(a->reason, "token ci expired at 1970-01-01T01:16:40Z");

  Result<GeneratedToken> other = GenerateToken();
  ASSERT_TRUE(other.ok());
  a = Authenticate(*store_, other->text, 2000);
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->token);
  EXPECT_EQ(a->reason, "unknown token");

  a = Authenticate(*store_, "hunter2", 2000);
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->token);
  EXPECT_NE(a->reason.find("not a driftless token"), std::string::npos);

  ASSERT_TRUE(RevokeApiToken(*store_, "ci", "ops@host", "", 2500).ok());
  a = Authenticate(*store_, made->text, 2600);
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->token);
  EXPECT_EQ(a->reason, "token ci is revoked");
}

}  // namespace
}  // namespace driftless::auth
