// libFuzzer target: the input checks of the REST handlers on arbitrary bytes: a request body
// checked as a JSON object of known fields (ObjectBody: malformed JSON, non-objects, unknown
// fields) and a query string read as a page request (ParsePageRequest, IdCursor). Checked on
// every input: a refusal is a 400 envelope, an accepted body has only the known fields, an
// accepted limit is within bounds.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "server/api/json.h"
#include "value/value.h"

namespace {

using driftless::server::http::Request;
using driftless::server::http::Response;

void CheckEnvelope(const Response& response) {
  if (response.status != 400) std::abort();
  auto parsed = driftless::value::ParseJson(response.body);
  if (!parsed.ok()) std::abort();
  const auto* error = parsed->Find("error");
  if (error == nullptr || error->Find("code") == nullptr || error->Find("message") == nullptr) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  // Up to the first newline: the query; the rest: the body.
  size_t cut = bytes.find('\n');
  Request request;
  request.method = "POST";
  request.query = std::string(bytes.substr(0, cut));
  request.body = cut == std::string_view::npos ? "" : std::string(bytes.substr(cut + 1));
  Response error;
  auto body = driftless::server::api::ObjectBody(request, {"action"}, &error);
  if (body.has_value()) {
    if (!body->is_object()) std::abort();
    for (const auto& [key, value] : body->as_object()) {
      if (key != "action") std::abort();
    }
  } else {
    CheckEnvelope(error);
  }
  auto page = driftless::server::api::ParsePageRequest(request, &error);
  if (page.ok()) {
    if (page->limit < 1 || page->limit > driftless::server::api::kMaxPageLimit) std::abort();
    (void)driftless::server::api::IdCursor(page->cursor);
  } else {
    CheckEnvelope(error);
  }
  return 0;
}
