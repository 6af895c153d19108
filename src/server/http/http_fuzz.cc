// libFuzzer target: raw bytes → the server's request parser (Boost.Beast, with the server's
// limits) → the router (patterns, percent-decoding, parameter checks) → a synchronous handler.
// Checked on every input: the status is one the layer may answer, and every error is a valid
// JSON envelope carrying a request id.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "server/http/server.h"
#include "value/value.h"

namespace {

using driftless::server::http::Request;
using driftless::server::http::Response;
using driftless::server::http::Router;
using driftless::server::http::ServerOptions;

const Router& TheRouter() {
  static Router* router = [] {
    auto* r = new Router(64);
    auto echo = [](const Request& request) {
      std::string params;
      for (const auto& [name, value] : request.params) params += name + "=" + value + ";";
      auto body = request.JsonBody();
      if (request.method == "POST" && !body.ok()) {
        return Response::Error(400, "malformed_json", body.error().message);
      }
      return Response::Text(200, params);
    };
    (void)r->AddSync("GET", "/api/v1/environments", echo);
    (void)r->AddSync("GET", "/api/v1/environments/{env}", echo);
    (void)r->AddSync("POST", "/api/v1/environments/{env}/runs", echo);
    (void)r->AddSync("GET", "/api/v1/runs/{id}", echo);
    (void)r->AddSync("GET", "/api/v1/runs/latest", echo);
    (void)r->AddSync("POST", "/api/v1/runs/{id}/cancel", echo);
    (void)r->AddSync("GET", "/", echo);
    return r;
  }();
  return *router;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ServerOptions options;
  options.max_header_bytes = 2048;
  options.max_body_bytes = 4096;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  Response response = driftless::server::http::HandleRawRequest(TheRouter(), options, bytes, true);
  switch (response.status) {
    case 200:
    case 400:
    case 404:
    case 405:
    case 413:
    case 431:
      break;
    default:
      std::abort();
  }
  if (response.status >= 400) {
    auto parsed = driftless::value::ParseJson(response.body);
    if (!parsed.ok()) std::abort();
    const auto* error = parsed->Find("error");
    if (error == nullptr || error->Find("code") == nullptr || error->Find("message") == nullptr)
      std::abort();
    const auto* id = error->Find("request_id");
    if (id == nullptr || !id->is_string() || id->as_string().empty()) std::abort();
  }
  return 0;
}
