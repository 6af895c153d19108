#include "plan/stored.h"

#include "base/hash.h"
#include "base/strings.h"
#include "value/render.h"

namespace driftless::plan {

using value::Value;

namespace {

Value StringList(const std::vector<std::string>& items) {
  Value::List l;
  for (const auto& s : items) l.push_back(Value::String(s));
  return Value::MakeList(std::move(l));
}

std::vector<std::string> FromList(const Value* v) {
  std::vector<std::string> out;
  if (v == nullptr || !v->is_list()) return out;
  for (const auto& s : v->as_list())
    if (s.is_string()) out.push_back(s.as_string());
  return out;
}

void MarkProtected(Value& v) {
  if (value::IsProtected(v)) v.set_sensitive(true);
  if (v.is_list()) {
    for (auto& c : v.as_list()) MarkProtected(c);
  } else if (v.is_object()) {
    for (auto& [k, c] : v.as_object()) MarkProtected(c);
  }
}

void ErasePath(Value& v, std::string_view path) {
  size_t dot = path.find('.');
  if (!v.is_object()) return;
  if (dot == std::string_view::npos) {
    v.Erase(path);
    return;
  }
  if (Value* child = v.Find(path.substr(0, dot))) ErasePath(*child, path.substr(dot + 1));
}

}  // namespace

std::string EncodeStored(const StoredAttrs& s) {
  Value v = Value::MakeObject();
  v.Set("attrs", s.attrs);
  v.Set("keys", StringList(s.keys));
  if (!s.ignore.empty()) v.Set("ignore", StringList(s.ignore));
  if (s.prevent_destroy) v.Set("prevent_destroy", Value::Bool(true));
  return value::ToJson(v);
}

Result<StoredAttrs> DecodeStored(const std::string& json) {
  Result<Value> v = value::ParseJson(json);
  if (!v.ok()) return MakeError("corrupt resource state: " + v.error().message);
  StoredAttrs s;
  if (const Value* a = v->Find("attrs")) s.attrs = *a;
  MarkProtected(s.attrs);
  s.keys = FromList(v->Find("keys"));
  s.ignore = FromList(v->Find("ignore"));
  if (const Value* p = v->Find("prevent_destroy"); p && p->is_bool())
    s.prevent_destroy = p->as_bool();
  return s;
}

std::vector<std::string> ComparedKeys(const Value& spec, const provider::ResourceSchema& schema) {
  std::vector<std::string> keys;
  if (!spec.is_object()) return keys;
  for (const auto& [k, v] : spec.as_object()) {
    const provider::FieldSchema* f = schema.Find(k);
    if (f != nullptr && !f->computed && !f->write_only) keys.push_back(k);
  }
  return keys;
}

Value Project(const Value& attrs, const std::vector<std::string>& keys,
              const std::vector<std::string>& ignore) {
  Value out = Value::MakeObject();
  if (!attrs.is_object()) return out;
  auto& o = out.as_object();
  for (const auto& [k, v] : attrs.as_object()) {
    for (const auto& key : keys) {
      if (key == k) {
        o.emplace_back(k, v);
        break;
      }
    }
  }
  for (const auto& path : ignore) {
    std::string_view p = path;
    if (StartsWith(p, "spec.")) p.remove_prefix(5);
    ErasePath(out, p);
  }
  return out;
}

Value ProtectLike(Value live, const Value& like, std::string_view salt) {
  if (like.sensitive()) {
    live.set_sensitive(true);
    return value::Protect(live, salt);
  }
  if (live.is_object() && like.is_object()) {
    for (auto& [k, v] : live.as_object()) {
      if (const Value* l = like.Find(k)) v = ProtectLike(std::move(v), *l, salt);
    }
  }
  return live;
}

std::string LiveDigest(const Value& projected) {
  return Sha256Hex(value::ToJson(projected)).substr(0, 32);
}

}  // namespace driftless::plan
