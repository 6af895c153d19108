// libFuzzer target: what a browser session's requests bring on arbitrary bytes: the Cookie
// header (auth::FindCookie), the session id in it (auth::HashSessionId) and the CSRF and Origin
// checks (CsrfProblem, OriginProblem). The input's lines are the Cookie header, the
// X-CSRF-Token header, the Origin header and the Host header. Checked on every input: a value
// found is a part of the header without ';', an accepted id is the one encoding of 32 bytes and
// hashes to a SHA-256, the session's own secret from the own origin passes, and a wrong one never
// does.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "auth/sessions.h"
#include "auth/token.h"
#include "server/api/sessions.h"

namespace {

using driftless::server::http::Request;

std::vector<std::string_view> Lines(std::string_view bytes) {
  std::vector<std::string_view> out;
  while (out.size() < 3) {
    size_t cut = bytes.find('\n');
    if (cut == std::string_view::npos) break;
    out.push_back(bytes.substr(0, cut));
    bytes.remove_prefix(cut + 1);
  }
  out.push_back(bytes);
  while (out.size() < 4) out.emplace_back();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace auth = driftless::auth;
  namespace api = driftless::server::api;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> lines = Lines(bytes);
  const std::string_view cookie = lines[0];

  auth::CookieLookup found = auth::FindCookie(cookie, auth::kSessionCookie);
  if (found.kind == auth::CookieLookup::Kind::kFound) {
    if (found.value.find(';') != std::string_view::npos) std::abort();
    if (found.value.data() < cookie.data() ||
        found.value.data() + found.value.size() > cookie.data() + cookie.size()) {
      std::abort();
    }
    auto hash = auth::HashSessionId(found.value);
    if (hash.ok()) {
      std::string raw;
      if (hash->size() != 64 || !auth::Base64UrlDecode(found.value, &raw) || raw.size() != 32 ||
          auth::Base64UrlEncode(raw) != found.value) {
        std::abort();
      }
    }
  } else if (found.kind == auth::CookieLookup::Kind::kMalformed) {
    if (found.problem.empty()) std::abort();
  }

  Request request;
  request.method = "POST";
  request.headers = {{"X-CSRF-Token", std::string(lines[1])},
                     {"Origin", std::string(lines[2])},
                     {"Host", std::string(lines[3])}};
  driftless::state::Session session;
  session.csrf = std::string(lines[1]);
  const std::string origin_problem = api::OriginProblem(request);
  const std::string problem = api::CsrfProblem(request, session);
  // The session's own secret: only the origin can refuse it.
  if (!session.csrf.empty() && problem != origin_problem) std::abort();
  if (session.csrf.empty() && problem.empty()) std::abort();
  // The origin that the Host names is always the server's own.
  if (!lines[3].empty()) {
    request.headers[1].second = "http://" + std::string(lines[3]);
    if (!api::OriginProblem(request).empty()) std::abort();
  }
  // Another secret never passes.
  session.csrf += "x";
  if (api::CsrfProblem(request, session).empty()) std::abort();
  return 0;
}
