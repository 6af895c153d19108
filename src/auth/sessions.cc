#include "auth/sessions.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>

#include "auth/rights.h"
#include "auth/token.h"
#include "base/hash.h"

namespace driftless::auth {

namespace {

// 32 random bytes in base64url, or an error when OpenSSL has no entropy.
Result<std::string> RandomSecret(std::string* raw) {
  std::string bytes(kSecretBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(bytes.size())) !=
      1) {
    return MakeError("cannot make a session: OpenSSL's random generator failed");
  }
  std::string text = Base64UrlEncode(bytes);
  if (raw != nullptr) *raw = bytes;
  OPENSSL_cleanse(bytes.data(), bytes.size());
  return text;
}

}  // namespace

Result<CreatedSession> CreateSession(state::ControlStore& store, const state::Token& token,
                                     int64_t now) {
  std::string raw;
  Result<std::string> id = RandomSecret(&raw);
  if (!id.ok()) return id.error();
  Result<std::string> csrf = RandomSecret(nullptr);
  if (!csrf.ok()) return csrf.error();
  CreatedSession out;
  out.id = std::move(*id);
  out.record.hash = Sha256Hex(raw);
  OPENSSL_cleanse(raw.data(), raw.size());
  out.record.token_hash = token.hash;
  out.record.csrf = std::move(*csrf);
  out.record.created_at = now;
  out.record.expires_at = now + kSessionLifetime;
  if (token.expires_at != 0)
    out.record.expires_at = std::min(out.record.expires_at, token.expires_at);
  if (out.record.expires_at <= now) {
    return MakeError("cannot make a session: the token expires now");
  }
  Result<int64_t> pruned = store.PruneSessions(now);
  if (!pruned.ok()) return pruned.error();
  if (Status s = store.CreateSession(out.record); !s.ok()) return s.error();
  return out;
}

Result<std::string> HashSessionId(std::string_view id) {
  std::string raw;
  if (!Base64UrlDecode(id, &raw) || raw.size() != kSecretBytes) {
    return MakeError("not a session id (43 characters of base64url)");
  }
  std::string hash = Sha256Hex(raw);
  OPENSSL_cleanse(raw.data(), raw.size());
  return hash;
}

CookieLookup FindCookie(std::string_view header, std::string_view name) {
  CookieLookup out;
  while (!header.empty()) {
    size_t end = header.find(';');
    std::string_view pair = header.substr(0, end);
    header = end == std::string_view::npos ? std::string_view() : header.substr(end + 1);
    while (!pair.empty() && (pair.front() == ' ' || pair.front() == '\t')) pair.remove_prefix(1);
    while (!pair.empty() && (pair.back() == ' ' || pair.back() == '\t')) pair.remove_suffix(1);
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos || pair.substr(0, eq) != name) continue;
    std::string_view value = pair.substr(eq + 1);
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    if (out.kind != CookieLookup::Kind::kAbsent) {
      out.kind = CookieLookup::Kind::kMalformed;
      out.value = {};
      out.problem = "the Cookie header names " + std::string(name) + " more than once";
      return out;
    }
    out.kind = CookieLookup::Kind::kFound;
    out.value = value;
  }
  return out;
}

Result<SessionAuthentication> AuthenticateSession(state::ControlStore& store, std::string_view id,
                                                  int64_t now) {
  SessionAuthentication out;
  Result<std::string> hash = HashSessionId(id);
  if (!hash.ok()) {
    out.reason = "malformed session cookie: " + hash.error().message;
    return out;
  }
  Result<std::optional<state::Session>> found = store.FindSessionByHash(*hash);
  if (!found.ok()) return found.error();
  // Compared again in constant time, as a token's hash is: the lookup itself may not be.
  if (!found->has_value() || !ConstantTimeEquals((*found)->hash, *hash)) {
    out.reason = "unknown or ended session; sign in again";
    return out;
  }
  if (now >= (*found)->expires_at) {
    out.reason = "the session expired; sign in again";
    return out;
  }
  Result<Authentication> token = AuthenticateHash(store, (*found)->token_hash, now);
  if (!token.ok()) return token.error();
  if (!token->token.has_value()) {
    out.reason = "the session's token was refused: " + token->reason;
    return out;
  }
  out.session = std::move(**found);
  out.token = std::move(token->token);
  return out;
}

}  // namespace driftless::auth
