#include "value/value.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "base/strings.h"

namespace driftless::value {

Value Value::Bool(bool b) {
  Value v;
  v.type_ = Type::kBool;
  v.data_ = b;
  return v;
}

Value Value::Int(int64_t i) {
  Value v;
  v.type_ = Type::kInt;
  v.data_ = i;
  return v;
}

Value Value::Double(double d) {
  Value v;
  v.type_ = Type::kDouble;
  v.data_ = d;
  return v;
}

Value Value::String(std::string s) {
  Value v;
  v.type_ = Type::kString;
  v.data_ = std::move(s);
  return v;
}

Value Value::MakeList(List items) {
  Value v;
  v.type_ = Type::kList;
  v.data_ = std::move(items);
  return v;
}

Value Value::MakeObject(Object members) {
  Value v;
  v.type_ = Type::kObject;
  v.data_ = std::move(members);
  v.SortMembers();
  return v;
}

Value Value::Unknown() {
  Value v;
  v.type_ = Type::kUnknown;
  return v;
}

namespace {

struct KeyLess {
  bool operator()(const Value::Member& m, std::string_view k) const { return m.first < k; }
};

}  // namespace

const Value* Value::Find(std::string_view key) const {
  if (!is_object()) return nullptr;
  const Object& o = as_object();
  auto it = std::lower_bound(o.begin(), o.end(), key, KeyLess());
  if (it == o.end() || it->first != key) return nullptr;
  return &it->second;
}

Value* Value::Find(std::string_view key) {
  return const_cast<Value*>(static_cast<const Value*>(this)->Find(key));
}

const Value* Value::FindPath(std::string_view dotted) const {
  const Value* cur = this;
  while (cur != nullptr && !dotted.empty()) {
    size_t dot = dotted.find('.');
    std::string_view part = dotted.substr(0, dot);
    dotted = dot == std::string_view::npos ? std::string_view() : dotted.substr(dot + 1);
    if (cur->is_object()) {
      cur = cur->Find(part);
    } else if (cur->is_list()) {
      size_t idx = 0;
      bool digits = !part.empty();
      for (char c : part) {
        if (c < '0' || c > '9')
          digits = false;
        else
          idx = idx * 10 + static_cast<size_t>(c - '0');
      }
      if (!digits || idx >= cur->as_list().size()) return nullptr;
      cur = &cur->as_list()[idx];
    } else {
      return nullptr;
    }
  }
  return cur;
}

Value& Value::Set(std::string key, Value v) {
  Object& o = as_object();
  auto it = std::lower_bound(o.begin(), o.end(), key, KeyLess());
  if (it != o.end() && it->first == key) {
    it->second = std::move(v);
    return it->second;
  }
  return o.insert(it, Member(std::move(key), std::move(v)))->second;
}

bool Value::Erase(std::string_view key) {
  if (!is_object()) return false;
  Object& o = as_object();
  auto it = std::lower_bound(o.begin(), o.end(), key, KeyLess());
  if (it == o.end() || it->first != key) return false;
  o.erase(it);
  return true;
}

std::string Value::SortMembers() {
  Object& o = as_object();
  std::stable_sort(o.begin(), o.end(),
                   [](const Member& a, const Member& b) { return a.first < b.first; });
  for (size_t i = 1; i < o.size(); ++i) {
    if (o[i].first == o[i - 1].first) return o[i].first;
  }
  return "";
}

bool Value::ContainsSensitive() const {
  if (sensitive_) return true;
  if (is_list()) {
    for (const auto& v : as_list())
      if (v.ContainsSensitive()) return true;
  } else if (is_object()) {
    for (const auto& [k, v] : as_object())
      if (v.ContainsSensitive()) return true;
  }
  return false;
}

bool Value::ContainsUnknown() const {
  if (is_unknown()) return true;
  if (is_list()) {
    for (const auto& v : as_list())
      if (v.ContainsUnknown()) return true;
  } else if (is_object()) {
    for (const auto& [k, v] : as_object())
      if (v.ContainsUnknown()) return true;
  }
  return false;
}

bool Value::operator==(const Value& other) const {
  if (is_number() && other.is_number()) {
    if (is_int() && other.is_int()) return as_int() == other.as_int();
    return as_double() == other.as_double();
  }
  if (type_ != other.type_) return false;
  switch (type_) {
    case Type::kNull:
    case Type::kUnknown:
      return true;
    case Type::kBool:
      return as_bool() == other.as_bool();
    case Type::kString:
      return as_string() == other.as_string();
    case Type::kList:
      return as_list() == other.as_list();
    case Type::kObject:
      return as_object() == other.as_object();
    default:
      return false;
  }
}

namespace {

std::string FormatDouble(double d) {
  if (std::isnan(d) || std::isinf(d)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  // Prefer the shortest representation that round-trips.
  for (int prec = 1; prec <= 17; ++prec) {
    char shortbuf[64];
    std::snprintf(shortbuf, sizeof shortbuf, "%.*g", prec, d);
    if (std::strtod(shortbuf, nullptr) == d) {
      std::string s = shortbuf;
      if (s.find_first_of(".eE") == std::string::npos) s += ".0";
      return s;
    }
  }
  return buf;
}

// Writes v as JSON; `redact`: sensitive values as "(sensitive)" (see Redact in render.h).
void WriteJson(const Value& v, std::string& out, int indent, int depth, bool redact = false) {
  auto newline = [&](int d) {
    if (indent < 0) return;
    out += '\n';
    out.append(static_cast<size_t>(d * indent), ' ');
  };
  if (redact && v.sensitive()) {
    out += "\"(sensitive)\"";
    return;
  }
  switch (v.type()) {
    case Value::Type::kNull:
      out += "null";
      break;
    case Value::Type::kUnknown:
      out += "{\"$unknown\":true}";
      break;
    case Value::Type::kBool:
      out += v.as_bool() ? "true" : "false";
      break;
    case Value::Type::kInt:
      out += std::to_string(v.as_int());
      break;
    case Value::Type::kDouble:
      out += FormatDouble(v.as_double());
      break;
    case Value::Type::kString:
      AppendQuoted(out, v.as_string());
      break;
    case Value::Type::kList: {
      const auto& l = v.as_list();
      out += '[';
      for (size_t i = 0; i < l.size(); ++i) {
        if (i) out += ',';
        newline(depth + 1);
        WriteJson(l[i], out, indent, depth + 1, redact);
      }
      if (!l.empty()) newline(depth);
      out += ']';
      break;
    }
    case Value::Type::kObject: {
      const auto& o = v.as_object();
      out += '{';
      for (size_t i = 0; i < o.size(); ++i) {
        if (i) out += ',';
        newline(depth + 1);
        AppendQuoted(out, o[i].first);
        out += indent < 0 ? ":" : ": ";
        WriteJson(o[i].second, out, indent, depth + 1, redact);
      }
      if (!o.empty()) newline(depth);
      out += '}';
      break;
    }
  }
}

}  // namespace

std::string Value::ScalarText() const {
  switch (type_) {
    case Type::kString:
      return as_string();
    case Type::kUnknown:
      return "(known after apply)";
    default:
      return ToJson(*this);
  }
}

std::string_view TypeName(Value::Type t) {
  switch (t) {
    case Value::Type::kNull:
      return "null";
    case Value::Type::kBool:
      return "bool";
    case Value::Type::kInt:
      return "integer";
    case Value::Type::kDouble:
      return "number";
    case Value::Type::kString:
      return "string";
    case Value::Type::kList:
      return "list";
    case Value::Type::kObject:
      return "map";
    case Value::Type::kUnknown:
      return "unknown";
  }
  return "?";
}

std::string ToJson(const Value& v) {
  std::string out;
  WriteJson(v, out, -1, 0);
  return out;
}

void AppendRedactedJson(std::string& out, const Value& v) { WriteJson(v, out, -1, 0, true); }

std::string ToPrettyJson(const Value& v) {
  std::string out;
  WriteJson(v, out, 2, 0);
  return out;
}

}  // namespace driftless::value
