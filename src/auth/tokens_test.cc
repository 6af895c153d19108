#include "auth/tokens.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "auth/rights.h"
#include "auth/token.h"
#include "state/sqlite/sqlite_state_store.h"

namespace driftless::auth {
namespace {

class TokensTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "dl-tokens-XXXXXX").string();
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

TEST_F(TokensTest, CreateStoresOnlyTheHashAndAudits) {
  TokenRequest req;
  req.name = "deploy-bot";
  req.role = "editor";
  req.envs = "preview-*";
  req.ttl_seconds = 90 * 86400;
  req.created_by = "ops@host";
  req.now = 1000;
  Result<CreatedToken> made = CreateApiToken(*store_, req);
  ASSERT_TRUE(made.ok()) << made.error().message;
  EXPECT_EQ(made->text.substr(0, 3), "dl_");
  EXPECT_EQ(made->record.hash, *HashToken(made->text));
  EXPECT_EQ(made->record.expires_at, 1000 + 90 * 86400);

  Result<std::vector<state::Token>> list = store_->ListTokens();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  const state::Token& t = (*list)[0];
  EXPECT_EQ(t.name, "deploy-bot");
  EXPECT_EQ(t.role, "editor");
  EXPECT_EQ(t.envs, "preview-*");
  EXPECT_EQ(t.created_by, "ops@host");
  EXPECT_EQ(t.created_at, 1000);
  EXPECT_EQ(TokenStatus(t, 2000), "active");
  EXPECT_EQ(TokenStatus(t, 1000 + 90 * 86400), "expired");
  // The secret is nowhere in the database file.
  std::string secret_part = made->text.substr(3);
  for (const char* f : {"/state.db", "/state.db-wal"}) {
    std::string bytes;
    if (FILE* fp = std::fopen((dir_ + f).c_str(), "rb")) {
      char buf[4096];
      size_t n;
      while ((n = std::fread(buf, 1, sizeof buf, fp)) > 0) bytes.append(buf, n);
      std::fclose(fp);
    }
    EXPECT_EQ(bytes.find(secret_part), std::string::npos) << f;
  }

  Result<state::Page<state::AuditEntry>> audit = store_->ListAudit({}, 0, 10);
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->items.size(), 1u);
  EXPECT_EQ(audit->items[0].action, "token.create");
  EXPECT_EQ(audit->items[0].subject, "deploy-bot");
  EXPECT_EQ(audit->items[0].who, "ops@host");
  EXPECT_EQ(audit->items[0].result, "allowed");

  Result<CreatedToken> dup = CreateApiToken(*store_, req);
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().message,
            "a token named deploy-bot exists already; revoke it first or choose another --name");

  ASSERT_TRUE(RevokeApiToken(*store_, "deploy-bot", "ops@host", "req-9", 3000).ok());
  Status again = RevokeApiToken(*store_, "deploy-bot", "ops@host");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().message,
            "no active token is named deploy-bot (driftless token list shows them)");
  audit = store_->ListAudit({}, 0, 10);
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->items.size(), 2u);
  EXPECT_EQ(audit->items[0].action, "token.revoke");
  EXPECT_EQ(audit->items[0].request_id, "req-9");
  EXPECT_EQ(TokenStatus((*store_->ListTokens())[0], 3001), "revoked");
}

TEST_F(TokensTest, CreateRefusesBadRequestsNamingTheFlag) {
  TokenRequest req;
  req.role = "viewer";
  Result<CreatedToken> unnamed = CreateApiToken(*store_, req);
  ASSERT_TRUE(unnamed.ok()) << unnamed.error().message;
  EXPECT_EQ(unnamed->record.name.substr(0, 7), "viewer-");
  EXPECT_EQ(unnamed->record.envs, "**");
  EXPECT_EQ(unnamed->record.expires_at, 0);

  auto error_of = [&](TokenRequest r) {
    Result<CreatedToken> made = CreateApiToken(*store_, r);
    return made.ok() ? std::string("<ok>") : made.error().message;
  };
  TokenRequest bad = req;
  bad.role = "root";
  EXPECT_EQ(error_of(bad), "--role: role \"root\" is not viewer, editor or admin");
  bad = req;
  bad.envs = "";
  EXPECT_EQ(error_of(bad), "--envs: an environment glob is empty (use ** for every environment)");
  bad = req;
  bad.name = "../etc";
  EXPECT_EQ(error_of(bad), "--name ../etc: starts with a letter or a digit");
  bad.name = "a b";
  EXPECT_EQ(error_of(bad), "--name a b: use letters, digits and . _ @ - only");
  bad.name = std::string(65, 'a');
  EXPECT_EQ(error_of(bad), "--name: a token's name is 1 to 64 characters");
  EXPECT_EQ(store_->ListTokens()->size(), 1u);
}

TEST_F(TokensTest, AuthenticateAcceptsLiveTokensOnly) {
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

TEST(Ttl, ParsesUnitsAndRefusesTheRest) {
  EXPECT_EQ(*ParseTtl("90d"), 90 * 86400);
  EXPECT_EQ(*ParseTtl("12h"), 12 * 3600);
  EXPECT_EQ(*ParseTtl("1h30m"), 5400);
  EXPECT_EQ(*ParseTtl("2w"), 14 * 86400);
  EXPECT_EQ(*ParseTtl("45s"), 45);
  for (const char* bad : {"", "90", "d", "1x", "1.5h", "-1d", "0s", "99999999999d", "1h 30m"}) {
    EXPECT_FALSE(ParseTtl(bad).ok()) << bad;
  }
  EXPECT_EQ(ParseTtl("90").error().message,
            "--ttl 90: use a number and a unit: 90d, 12h, 30m, 1h30m, 2w");
  EXPECT_EQ(ParseTtl("5000w").error().message, "--ttl 5000w: at most ten years");
}

}  // namespace
}  // namespace driftless::auth
