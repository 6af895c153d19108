#include "auth/rights.h"

#include <array>

#include "auth/glob.h"
#include "auth/token.h"
#include "base/identity.h"

namespace driftless::auth {

namespace {

constexpr std::array<std::pair<Right, std::string_view>, 7> kNames = {{
    {Right::kRead, "read"},
    {Right::kPlan, "plan"},
    {Right::kApprove, "approve"},
    {Right::kApply, "apply"},
    {Right::kDestroy, "destroy"},
    {Right::kUnlock, "unlock"},
    {Right::kTokens, "tokens"},
}};

// Refusals of a live token's role name the role and the right.
Decision Refuse(std::string reason) { return Decision{false, std::move(reason)}; }

}  // namespace

std::string_view RightName(Right right) {
  for (const auto& [r, name] : kNames) {
    if (r == right) return name;
  }
  return "?";
}

std::optional<Right> ParseRight(std::string_view name) {
  for (const auto& [r, n] : kNames) {
    if (n == name) return r;
  }
  return std::nullopt;
}

const std::vector<Right>& AllRights() {
  static const std::vector<Right> kAll = [] {
    std::vector<Right> all;
    for (const auto& [r, name] : kNames) all.push_back(r);
    return all;
  }();
  return kAll;
}

const std::vector<std::string>& Roles() {
  static const std::vector<std::string> kRoles = {"viewer", "editor", "admin"};
  return kRoles;
}

Status CheckRole(std::string_view role) {
  for (const std::string& r : Roles()) {
    if (r == role) return Status::Ok();
  }
  return MakeError("role \"" + std::string(role) + "\" is not viewer, editor or admin");
}

bool RoleGrants(std::string_view role, Right right, bool protected_env) {
  if (role == "admin") return true;
  if (right == Right::kRead) return role == "viewer" || role == "editor";
  if (role != "editor") return false;
  switch (right) {
    case Right::kPlan:
    case Right::kApprove:
      return true;
    case Right::kApply:
    case Right::kDestroy:
      return !protected_env;
    default:
      return false;
  }
}

Result<std::string> NormalizeRights(std::string_view list, std::string_view role) {
  std::vector<bool> wanted(kNames.size(), false);
  size_t at = 0;
  while (at <= list.size() && !list.empty()) {
    size_t comma = list.find(',', at);
    std::string_view name =
        list.substr(at, comma == std::string_view::npos ? std::string_view::npos : comma - at);
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    std::optional<Right> right = ParseRight(name);
    if (!right.has_value()) {
      return MakeError("--rights: \"" + std::string(name) +
                       "\" is not a right; the rights are read, plan, approve, apply, destroy, "
                       "unlock, tokens");
    }
    if (!RoleGrants(role, *right, false)) {
      return MakeError("--rights: role " + std::string(role) + " never grants " +
                       std::string(name) + "; a token's rights can only narrow its role");
    }
    wanted[static_cast<size_t>(*right)] = true;
    if (comma == std::string_view::npos) break;
    at = comma + 1;
  }
  std::string out;
  for (size_t i = 0; i < kNames.size(); ++i) {
    if (!wanted[i]) continue;
    if (!out.empty()) out += ',';
    out += kNames[i].second;
  }
  return out;
}

bool TokenHasRight(const state::Token& token, Right right) {
  if (token.rights.empty()) return true;
  const std::string_view name = RightName(right);
  std::string_view rest = token.rights;
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    if (rest.substr(0, comma) == name) return true;
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return false;
}

Decision Authorize(const state::Token& token, Right right, std::string_view env, bool protected_env,
                   int64_t now) {
  if (token.revoked_at != 0) return Refuse("token " + token.name + " is revoked");
  if (token.expires_at != 0 && now >= token.expires_at) {
    return Refuse("token " + token.name + " expired at " + FormatTime(token.expires_at));
  }
  const std::string right_name(RightName(right));
  if (!env.empty() && !GlobMatch(token.envs, env)) {
    return Refuse("token " + token.name + " is limited to environments " + token.envs + ", not " +
                  std::string(env));
  }
  if (!TokenHasRight(token, right)) {
    return Refuse("token " + token.name + " is limited to the rights " + token.rights +
                  ", which do not include " + right_name);
  }
  if (right == Right::kTokens && token.role == "admin" && token.envs != "**") {
    return Refuse("token " + token.name + " is limited to environments " + token.envs +
                  ": managing tokens needs an admin token for every environment (**)");
  }
  if (!RoleGrants(token.role, right, protected_env)) {
    if (protected_env && RoleGrants(token.role, right, false)) {
      return Refuse("environment " + std::string(env) + " is protected: " + right_name +
                    " needs an admin token (token " + token.name + " is " + token.role + ")");
    }
    return Refuse("token " + token.name + " is " + token.role + ", which does not grant " +
                  right_name);
  }
  return Decision{true, ""};
}

Result<Authentication> Authenticate(state::ControlStore& store, std::string_view text,
                                    int64_t now) {
  Authentication out;
  Result<std::string> hash = HashToken(text);
  if (!hash.ok()) {
    out.reason = hash.error().message;
    return out;
  }
  return AuthenticateHash(store, *hash, now);
}

Result<Authentication> AuthenticateHash(state::ControlStore& store, const std::string& hash,
                                        int64_t now) {
  Authentication out;
  Result<std::optional<state::Token>> found = store.FindTokenByHash(hash);
  if (!found.ok()) return found.error();
  // The lookup is by hash; compared again in constant time, whatever the index did.
  if (!*found || !ConstantTimeEquals((*found)->hash, hash)) {
    out.reason = "unknown token";
    return out;
  }
  if ((*found)->revoked_at != 0) {
    out.reason = "token " + (*found)->name + " is revoked";
    return out;
  }
  if ((*found)->expires_at != 0 && now >= (*found)->expires_at) {
    out.reason = "token " + (*found)->name + " expired at " + FormatTime((*found)->expires_at);
    return out;
  }
  out.token = std::move(*found);
  return out;
}

}  // namespace driftless::auth
