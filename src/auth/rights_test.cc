#include "auth/rights.h"

#include <gtest/gtest.h>

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

TEST(Rights, ATokensRightsNarrowItsRoleAndNeverWidenIt) {
  Result<std::string> n = NormalizeRights(" approve ,plan", "editor");
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(*n, "plan,approve");  // the order of AllRights
  EXPECT_EQ(*NormalizeRights("", "viewer"), "");
  EXPECT_EQ(NormalizeRights("read,apply", "viewer").error().message,
            "--rights: role viewer never grants apply; a token's rights can only narrow its role");
  EXPECT_NE(NormalizeRights("plan,sudo", "admin").error().message.find("\"sudo\" is not a right"),
            std::string::npos);
  EXPECT_FALSE(NormalizeRights("plan,", "admin").ok());

  state::Token approver = Tok("admin");
  approver.rights = "read,approve";
  EXPECT_TRUE(TokenHasRight(approver, Right::kApprove));
  EXPECT_FALSE(TokenHasRight(approver, Right::kApply));
  EXPECT_TRUE(TokenHasRight(Tok("viewer"), Right::kApply));  // not limited: the role decides
  EXPECT_TRUE(Authorize(approver, Right::kApprove, "production", true, 200).allowed);
  Decision d = Authorize(approver, Right::kApply, "staging", false, 200);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.reason,
            "token t-admin is limited to the rights read,approve, which do not include apply");
  // A right in the list that the role does not grant there is still refused.
  state::Token editor = Tok("editor");
  editor.rights = "apply";
  EXPECT_FALSE(Authorize(editor, Right::kApply, "production", true, 200).allowed);
  EXPECT_TRUE(Authorize(editor, Right::kApply, "staging", false, 200).allowed);
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

}  // namespace
}  // namespace driftless::auth
