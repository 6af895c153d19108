#include "config/interpolate.h"

#include "base/strings.h"

namespace driftless::config {

using value::Value;

bool HasInterpolation(std::string_view s) {
  for (size_t i = s.find("${"); i != std::string_view::npos; i = s.find("${", i + 2)) {
    if (i == 0 || s[i - 1] != '$') return true;
  }
  return false;
}

std::string SecretEnvName(const std::string& name) { return "DRIFTLESS_SECRET_" + name; }

namespace {

bool ValidIdent(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-'))
      return false;
  }
  return true;
}

SourcePos At(const SourcePos& pos, size_t offset) {
  SourcePos p = pos;
  if (p.column > 0) p.column += static_cast<uint32_t>(offset);
  return p;
}

}  // namespace

std::vector<Reference> ParseReferences(std::string_view s, const SourcePos& pos,
                                       Diagnostics& diags) {
  std::vector<Reference> out;
  size_t i = 0;
  while ((i = s.find("${", i)) != std::string_view::npos) {
    if (i > 0 && s[i - 1] == '$') {
      i += 2;
      continue;
    }
    size_t end = s.find('}', i + 2);
    if (end == std::string_view::npos) {
      diags.Error(At(pos, i), "unterminated ${ in \"" + std::string(s) + "\"", "close it with }");
      break;
    }
    Reference r;
    r.offset = static_cast<uint32_t>(i);
    r.pos = At(pos, i);
    r.text = std::string(Trim(s.substr(i + 2, end - i - 2)));
    std::vector<std::string> parts = Split(r.text, '.');
    bool ok = true;
    for (const auto& p : parts)
      if (!ValidIdent(p)) ok = false;
    const std::string& head = parts[0];
    if (!ok) {
      diags.Error(At(pos, i), "malformed expression ${" + r.text + "}",
                  "use ${var.NAME}, ${secret.NAME}, ${env} or ${KIND.NAME.ATTR}");
    } else if (parts.size() == 1 &&
               (head == "env" || head == "branch" || head == "commit" || head == "project")) {
      r.type = head == "env"      ? Reference::Type::kEnv
               : head == "branch" ? Reference::Type::kBranch
               : head == "commit" ? Reference::Type::kCommit
                                  : Reference::Type::kProject;
      out.push_back(std::move(r));
    } else if ((head == "var" || head == "secret") && parts.size() == 2) {
      r.type = head == "var" ? Reference::Type::kVar : Reference::Type::kSecret;
      r.name = parts[1];
      out.push_back(std::move(r));
    } else if (head != "var" && head != "secret" && parts.size() >= 4) {
      r.type = Reference::Type::kResource;
      r.address = parts[0] + "." + parts[1] + "/" + parts[2];
      r.attr = Join(std::vector<std::string>(parts.begin() + 3, parts.end()), ".");
      out.push_back(std::move(r));
    } else {
      diags.Error(At(pos, i), "unknown expression ${" + r.text + "}",
                  "use ${var.NAME}, ${secret.NAME}, ${env}, ${branch}, ${commit}, ${project} or "
                  "${KIND.NAME.ATTR}");
    }
    i = end + 1;
  }
  return out;
}

void CollectResourceReferences(const Value& v, const std::string& file, std::vector<Reference>& out,
                               Diagnostics& diags) {
  if (v.is_string()) {
    if (!HasInterpolation(v.as_string())) return;
    for (auto& r : ParseReferences(v.as_string(), {file, v.line(), v.column()}, diags)) {
      if (r.type == Reference::Type::kResource) out.push_back(std::move(r));
    }
  } else if (v.is_list()) {
    for (const auto& c : v.as_list()) CollectResourceReferences(c, file, out, diags);
  } else if (v.is_object()) {
    for (const auto& [k, c] : v.as_object()) CollectResourceReferences(c, file, out, diags);
  }
}

namespace {

std::optional<Value> Resolve(const Reference& r, const Scope& scope, const SourcePos& pos,
                             Diagnostics& diags) {
  switch (r.type) {
    case Reference::Type::kEnv:
      return Value::String(scope.env);
    case Reference::Type::kBranch:
      return Value::String(scope.branch);
    case Reference::Type::kCommit:
      return Value::String(scope.commit);
    case Reference::Type::kProject:
      return Value::String(scope.project);
    case Reference::Type::kVar: {
      const Value* v = scope.vars ? scope.vars->Find(r.name) : nullptr;
      if (v == nullptr) {
        diags.Error(pos, "unknown variable ${var." + r.name + "}",
                    "declare it under `vars:` in driftless.yaml or in vars/" + scope.env + ".yaml");
        return std::nullopt;
      }
      return *v;
    }
    case Reference::Type::kSecret: {
      std::optional<std::string> s = scope.secret ? scope.secret(r.name) : std::nullopt;
      Value v;
      if (!s) {
        if (scope.secrets_required) {
          diags.Error(pos, "secret " + r.name + " is not set",
                      "export " + SecretEnvName(r.name) + " or pass --secrets-file");
          return std::nullopt;
        }
        v = Value::Unknown();
      } else {
        v = Value::String(std::move(*s));
      }
      v.set_sensitive(true);
      return v;
    }
    case Reference::Type::kResource: {
      std::optional<Value> v = scope.resource ? scope.resource(r.address, r.attr) : std::nullopt;
      if (!v) {
        diags.Error(pos,
                    "${" + r.text + "}: " + r.address + " has no attribute \"" + r.attr + "\"");
      }
      return v;
    }
  }
  return std::nullopt;
}

Value InterpolateString(const Value& raw, const Scope& scope, const std::string& file,
                        Diagnostics& diags) {
  const std::string& s = raw.as_string();
  if (!HasInterpolation(s)) {
    if (s.find("$${") == std::string::npos) return raw;
  }
  SourcePos pos{file, raw.line(), raw.column()};
  std::vector<Reference> refs = ParseReferences(s, pos, diags);
  // A string that is one expression and nothing else keeps the referenced value's type.
  if (refs.size() == 1 && refs[0].offset == 0 && s.size() >= 3 && s.back() == '}' &&
      s.find('}') == s.size() - 1) {
    std::optional<Value> v = Resolve(refs[0], scope, At(pos, 0), diags);
    if (!v) return Value::Unknown();
    Value out = std::move(*v);
    out.set_mark(raw.line(), raw.column());
    return out;
  }
  std::string text;
  bool sensitive = raw.sensitive(), unknown = false;
  size_t i = 0;
  size_t ref_index = 0;
  while (i < s.size()) {
    if (s.compare(i, 3, "$${") == 0) {
      text += "${";
      i += 3;
      continue;
    }
    if (ref_index < refs.size() && i == refs[ref_index].offset) {
      const Reference& r = refs[ref_index++];
      std::optional<Value> v = Resolve(r, scope, At(pos, i), diags);
      if (!v || v->is_unknown()) {
        unknown = true;
      } else if (!v->is_scalar() || v->is_null()) {
        diags.Error(At(pos, i),
                    "${" + r.text + "} is a " + std::string(value::TypeName(v->type())) +
                        " and cannot be joined into text",
                    "use it as the whole value");
        unknown = true;
      } else {
        text += v->ScalarText();
      }
      if (v && v->ContainsSensitive()) sensitive = true;
      i = s.find('}', i) + 1;
      continue;
    }
    if (s.compare(i, 2, "${") == 0) break;  // malformed: already reported
    text += s[i++];
  }
  Value out = unknown ? Value::Unknown() : Value::String(std::move(text));
  out.set_sensitive(sensitive);
  out.set_mark(raw.line(), raw.column());
  return out;
}

}  // namespace

Value Interpolate(const Value& raw, const Scope& scope, const std::string& file,
                  Diagnostics& diags) {
  if (raw.is_string()) return InterpolateString(raw, scope, file, diags);
  if (raw.is_list()) {
    Value::List items;
    items.reserve(raw.as_list().size());
    for (const auto& c : raw.as_list()) items.push_back(Interpolate(c, scope, file, diags));
    Value out = Value::MakeList(std::move(items));
    out.set_mark(raw.line(), raw.column());
    return out;
  }
  if (raw.is_object()) {
    Value out = Value::MakeObject();
    auto& o = out.as_object();
    o.reserve(raw.as_object().size());
    for (const auto& [k, c] : raw.as_object())
      o.emplace_back(k, Interpolate(c, scope, file, diags));
    out.set_mark(raw.line(), raw.column());
    return out;
  }
  return raw;
}

}  // namespace driftless::config
