#include "value/render.h"

#include "base/strings.h"

namespace driftless::value {
namespace {

bool NeedsQuotes(const std::string& s) {
  if (s.empty()) return true;
  static const char* kWords[] = {"true", "false", "null", "~", "yes", "no", "on", "off"};
  for (const char* w : kWords)
    if (s == w) return true;
  if (s.front() == ' ' || s.back() == ' ') return true;
  bool numeric = true;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E'))
      numeric = false;
    if (c == ':' || c == '#' || c == '"' || c == '\'' || c == '\n' || c == '\t' || c == '{' ||
        c == '}' || c == '[' || c == ']' || c == ',' || c == '&' || c == '*' || c == '!' ||
        c == '|' || c == '>' || c == '%' || c == '@' || c == '`' ||
        static_cast<unsigned char>(c) < 0x20)
      return true;
  }
  if (s.front() == '-' || s.front() == '?') return true;
  return numeric;
}

std::string Scalar(const Value& v) {
  if (v.sensitive()) return "(sensitive)";
  switch (v.type()) {
    case Value::Type::kString:
      return NeedsQuotes(v.as_string()) ? Quote(v.as_string()) : v.as_string();
    case Value::Type::kUnknown:
      return "(known after apply)";
    default:
      return ToJson(v);
  }
}

bool IsBlockString(const Value& v) {
  return !v.sensitive() && v.is_string() && v.as_string().find('\n') != std::string::npos;
}

void Render(const Value& v, std::string& out, int indent);

void RenderBlock(const std::string& s, std::string& out, int indent) {
  bool trailing_newline = !s.empty() && s.back() == '\n';
  out += trailing_newline ? "|\n" : "|-\n";
  size_t start = 0;
  std::string_view body(s);
  if (trailing_newline) body.remove_suffix(1);
  while (true) {
    size_t nl = body.find('\n', start);
    std::string_view line =
        body.substr(start, nl == std::string_view::npos ? body.npos : nl - start);
    if (!line.empty()) out.append(static_cast<size_t>(indent), ' ');
    out += line;
    out += '\n';
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
}

// Writes what follows "key:" or "- ".
void RenderAfterKey(const Value& v, std::string& out, int indent) {
  if (IsBlockString(v)) {
    out += ' ';
    RenderBlock(v.as_string(), out, indent + 2);
  } else if (!v.sensitive() && v.is_object() && !v.as_object().empty()) {
    out += '\n';
    Render(v, out, indent + 2);
  } else if (!v.sensitive() && v.is_list() && !v.as_list().empty()) {
    out += '\n';
    Render(v, out, indent + 2);
  } else {
    out += ' ';
    if (!v.sensitive() && v.is_object())
      out += "{}";
    else if (!v.sensitive() && v.is_list())
      out += "[]";
    else
      out += Scalar(v);
    out += '\n';
  }
}

void Render(const Value& v, std::string& out, int indent) {
  std::string pad(static_cast<size_t>(indent), ' ');
  if (!v.sensitive() && v.is_object() && !v.as_object().empty()) {
    for (const auto& [k, child] : v.as_object()) {
      out += pad;
      out += NeedsQuotes(k) ? Quote(k) : k;
      out += ':';
      RenderAfterKey(child, out, indent);
    }
  } else if (!v.sensitive() && v.is_list() && !v.as_list().empty()) {
    for (const auto& child : v.as_list()) {
      out += pad;
      out += '-';
      RenderAfterKey(child, out, indent);
    }
  } else if (IsBlockString(v)) {
    out += pad;
    RenderBlock(v.as_string(), out, indent + 2);
  } else {
    out += pad;
    if (!v.sensitive() && v.is_object())
      out += "{}";
    else if (!v.sensitive() && v.is_list())
      out += "[]";
    else
      out += Scalar(v);
    out += '\n';
  }
}

}  // namespace

std::string RenderText(const Value& v) {
  std::string out;
  Render(v, out, 0);
  return out;
}

Value Redact(const Value& v) {
  if (v.sensitive()) return Value::String("(sensitive)");
  if (v.is_list()) {
    Value::List items;
    items.reserve(v.as_list().size());
    for (const auto& c : v.as_list()) items.push_back(Redact(c));
    return Value::MakeList(std::move(items));
  }
  if (v.is_object()) {
    Value out = Value::MakeObject();
    auto& o = out.as_object();
    o.reserve(v.as_object().size());
    for (const auto& [k, c] : v.as_object()) o.emplace_back(k, Redact(c));
    return out;
  }
  return v;
}

}  // namespace driftless::value

#include "base/hash.h"

namespace driftless::value {

Value Protect(const Value& v, std::string_view salt) {
  if (v.sensitive()) {
    if (IsProtected(v)) return v;
    Value plain = v;
    plain.set_sensitive(false);
    Value out =
        Value::String("(sensitive:" + HmacSha256Hex(salt, ToJson(plain)).substr(0, 32) + ")");
    out.set_sensitive(true);
    return out;
  }
  if (v.is_list()) {
    Value::List items;
    items.reserve(v.as_list().size());
    for (const auto& c : v.as_list()) items.push_back(Protect(c, salt));
    return Value::MakeList(std::move(items));
  }
  if (v.is_object()) {
    Value out = Value::MakeObject();
    auto& o = out.as_object();
    o.reserve(v.as_object().size());
    for (const auto& [k, c] : v.as_object()) o.emplace_back(k, Protect(c, salt));
    return out;
  }
  return v;
}

bool IsProtected(const Value& v) {
  return v.is_string() && v.as_string().rfind("(sensitive:", 0) == 0 && v.as_string().back() == ')';
}

}  // namespace driftless::value
