#include "auth/tokens.h"

#include <cctype>

#include "auth/glob.h"
#include "auth/rights.h"
#include "auth/token.h"
#include "base/hash.h"
#include "base/identity.h"

namespace driftless::auth {

namespace {

constexpr int64_t kMaxTtl = int64_t{10} * 365 * 24 * 3600;

Status Audit(state::ControlStore& store, const std::string& who, const std::string& action,
             const std::string& name, const std::string& request_id, int64_t now) {
  state::AuditEntry e;
  e.time = now;
  e.who = who;
  e.action = action;
  e.subject = name;
  e.result = "allowed";
  e.request_id = request_id;
  Result<int64_t> id = store.AppendAudit(e);
  return id.ok() ? Status::Ok() : Status(id.error());
}

}  // namespace

Status CheckTokenName(std::string_view name) {
  if (name.empty() || name.size() > 64) {
    return MakeError("--name: a token's name is 1 to 64 characters");
  }
  if (!std::isalnum(static_cast<unsigned char>(name[0]))) {
    return MakeError("--name " + std::string(name) + ": starts with a letter or a digit");
  }
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '@' &&
        c != '-') {
      return MakeError("--name " + std::string(name) + ": use letters, digits and . _ @ - only");
    }
  }
  return Status::Ok();
}

Result<int64_t> ParseTtl(std::string_view text) {
  const std::string how = "--ttl " + std::string(text) +
                          ": use a number and a unit: 90d, 12h, "
                          "30m, 1h30m, 2w";
  if (text.empty()) return MakeError(how);
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    int64_t n = 0;
    size_t digits = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      n = n * 10 + (text[i] - '0');
      ++i;
      if (++digits > 10) return MakeError(how);
    }
    if (digits == 0 || i == text.size()) return MakeError(how);
    int64_t unit = 0;
    switch (text[i]) {
      case 's':
        unit = 1;
        break;
      case 'm':
        unit = 60;
        break;
      case 'h':
        unit = 3600;
        break;
      case 'd':
        unit = 86400;
        break;
      case 'w':
        unit = 7 * 86400;
        break;
      default:
        return MakeError(how);
    }
    ++i;
    total += n * unit;
    if (total > kMaxTtl) return MakeError("--ttl " + std::string(text) + ": at most ten years");
  }
  if (total <= 0) return MakeError("--ttl " + std::string(text) + ": must be longer than 0s");
  return total;
}

std::string TokenStatus(const state::Token& token, int64_t now) {
  if (token.revoked_at != 0) return "revoked";
  if (token.expires_at != 0 && now >= token.expires_at) return "expired";
  return "active";
}

Result<CreatedToken> CreateApiToken(state::ControlStore& store, const TokenRequest& request) {
  if (Status s = CheckRole(request.role); !s.ok()) return MakeError("--role: " + s.error().message);
  if (Status s = CheckGlob(request.envs); !s.ok()) return MakeError("--envs: " + s.error().message);
  Result<std::string> rights = NormalizeRights(request.rights, request.role);
  if (!rights.ok()) return rights.error();
  if (request.ttl_seconds < 0 || request.ttl_seconds > kMaxTtl) {
    return MakeError("--ttl: between 1s and ten years");
  }
  std::string name = request.name.empty() ? request.role + "-" + RandomHex(4) : request.name;
  if (Status s = CheckTokenName(name); !s.ok()) return s.error();
  Result<GeneratedToken> made = GenerateToken();
  if (!made.ok()) return made.error();
  const int64_t now = request.now > 0 ? request.now : NowUnix();
  CreatedToken out;
  out.text = std::move(made->text);
  out.record.name = std::move(name);
  out.record.role = request.role;
  out.record.envs = request.envs;
  out.record.rights = std::move(*rights);
  out.record.hash = std::move(made->hash);
  out.record.created_by = request.created_by;
  out.record.created_at = now;
  out.record.expires_at = request.ttl_seconds > 0 ? now + request.ttl_seconds : 0;
  if (Status s = store.CreateToken(out.record); !s.ok()) return s.error();
  if (Status s = Audit(store, request.created_by, "token.create", out.record.name,
                       request.request_id, now);
      !s.ok()) {
    return s.error();
  }
  return out;
}

Status RevokeApiToken(state::ControlStore& store, const std::string& name, const std::string& who,
                      const std::string& request_id, int64_t now) {
  if (now <= 0) now = NowUnix();
  Result<bool> revoked = store.RevokeToken(name, now);
  if (!revoked.ok()) return revoked.error();
  if (!*revoked) {
    return MakeError("no active token is named " + name + " (driftless token list shows them)");
  }
  return Audit(store, who, "token.revoke", name, request_id, now);
}

}  // namespace driftless::auth
