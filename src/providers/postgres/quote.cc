#include "providers/postgres/quote.h"

namespace driftless::providers::postgres {

std::string QuoteIdent(std::string_view name) {
  std::string out;
  out.reserve(name.size() + 2);
  out += '"';
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string QuoteLiteral(std::string_view text) {
  const bool backslash = text.find('\\') != std::string_view::npos;
  std::string out;
  out.reserve(text.size() + 3);
  if (backslash) out += 'E';
  out += '\'';
  for (char c : text) {
    if (c == '\'' || (backslash && c == '\\')) out += c;
    out += c;
  }
  out += '\'';
  return out;
}

std::string MaskSecret(std::string message, std::string_view secret) {
  if (secret.empty()) return message;
  for (size_t at = message.find(secret); at != std::string::npos;
       at = message.find(secret, at + 11)) {
    message.replace(at, secret.size(), "(sensitive)");
  }
  return message;
}

std::string CheckName(std::string_view name) {
  if (name.empty()) return "must not be empty";
  if (name.find('\0') != std::string_view::npos) return "must not hold a NUL byte";
  if (name.size() > 63) {
    return "is " + std::to_string(name.size()) +
           " bytes long; PostgreSQL keeps at most 63 (it would cut the name)";
  }
  return "";
}

}  // namespace driftless::providers::postgres
