// libFuzzer target: raw bytes → the server's parser and router → POST /api/v1/hooks/git on a
// real SQLite state in a temporary folder. Checked on every input: the status is one the hook
// may answer, every error is a JSON envelope, and nothing is accepted (200, 202) from an input
// that carries neither the secret (GitLab's token) nor a "sha256=" signature.
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "server/api/hooks.h"
#include "server/http/server.h"

namespace {

using driftless::server::api::ApiContext;
using driftless::server::api::StorePool;
using driftless::server::http::Router;
using driftless::server::http::ServerOptions;

constexpr char kSecret[] = "fuzz-secret";

struct World {
  std::string dir;
  StorePool* stores = nullptr;
  ApiContext context;
  Router router;
};

World& TheWorld() {
  static World* world = [] {
    auto* w = new World;
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "driftless-hooks-fuzz.XXXXXX").string();
    const char* made = mkdtemp(tmpl.data());
    if (made == nullptr) std::abort();
    w->dir = made;
    w->stores = new StorePool(w->dir + "/state.db");
    w->context.stores = w->stores;
    w->context.webhook_secret = kSecret;
    if (!driftless::server::api::AddHookRoutes(w->router, w->context).ok()) std::abort();
    return w;
  }();
  return *world;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  World& w = TheWorld();
  ServerOptions options;
  options.max_body_bytes = 64 * 1024;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  driftless::server::http::Response r =
      driftless::server::http::HandleRawRequest(w.router, options, bytes, true);
  switch (r.status) {
    case 200:
    case 202:
    case 400:
    case 401:
    case 404:
    case 405:
    case 408:
    case 413:
    case 431:
    case 500:
    case 503:
      break;
    default:
      std::abort();
  }
  if (r.status >= 400) {
    if (r.body.find("\"error\"") == std::string::npos) std::abort();
    return 0;
  }
  // Accepted: the input must carry the secret (GitLab) or a signature.
  if (bytes.find(kSecret) == std::string_view::npos) {
    bool has_sig = bytes.find("sha256=") != std::string_view::npos ||
                   bytes.find("SHA256=") != std::string_view::npos;
    if (!has_sig) std::abort();
  }
  return 0;
}
