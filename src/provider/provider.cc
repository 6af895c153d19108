#include "provider/provider.h"

#include <algorithm>

namespace driftless::provider {

std::string_view FieldTypeName(FieldType t) {
  switch (t) {
    case FieldType::kString:
      return "string";
    case FieldType::kBool:
      return "bool";
    case FieldType::kInt:
      return "integer";
    case FieldType::kList:
      return "list";
    case FieldType::kMap:
      return "map";
    case FieldType::kAny:
      return "any";
  }
  return "?";
}

const FieldSchema* ResourceSchema::Find(std::string_view field) const {
  for (const auto& f : fields)
    if (f.name == field) return &f;
  return nullptr;
}

Result<value::Value> ImportSpec(const ResourceRequest& declared, const std::string& id,
                                const value::Value& identity, const std::string& declared_id) {
  value::Value spec = declared.spec.is_object() ? declared.spec : value::Value::MakeObject();
  std::string differences;
  for (const auto& [field, named] : identity.as_object()) {
    const value::Value* have = spec.Find(field);
    value::Value fallback;
    if (have == nullptr && field == "name") {
      fallback = value::Value::String(declared.name);
      have = &fallback;
    }
    if (have == nullptr || have->ContainsUnknown()) {
      spec.Set(field, named);
      continue;
    }
    if (*have == named) continue;
    differences += (differences.empty() ? "" : "; ") + field + " " + value::ToJson(named) +
                   " (declared: " + value::ToJson(*have) + ")";
  }
  if (differences.empty()) return spec;
  return MakeError("ID \"" + id + "\" names another object than " + declared.kind + "/" +
                   declared.name + " declares: " + differences +
                   ". Import takes over only the object its declaration names: " +
                   (declared_id.empty() ? "" : "import ID \"" + declared_id + "\", or ") +
                   "change the declaration first");
}

void Registry::Register(std::unique_ptr<Provider> p) {
  for (auto& s : p->Schemas()) schemas_.push_back(std::move(s));
  std::sort(schemas_.begin(), schemas_.end(),
            [](const ResourceSchema& a, const ResourceSchema& b) { return a.kind < b.kind; });
  providers_.push_back(std::move(p));
}

const Provider* Registry::FindProvider(std::string_view name) const {
  for (const auto& p : providers_)
    if (p->Name() == name) return p.get();
  return nullptr;
}

const ResourceSchema* Registry::FindKind(std::string_view kind) const {
  auto it =
      std::lower_bound(schemas_.begin(), schemas_.end(), kind,
                       [](const ResourceSchema& s, std::string_view k) { return s.kind < k; });
  if (it == schemas_.end() || it->kind != kind) return nullptr;
  return &*it;
}

std::vector<std::string> Registry::Kinds() const {
  std::vector<std::string> out;
  for (const auto& s : schemas_) out.push_back(s.kind);
  return out;
}

namespace {

// The calling thread's open ReadScopes and what the end of the outermost one releases.
thread_local int t_read_scopes = 0;
thread_local std::vector<void (*)()> t_read_scope_ends;

}  // namespace

ReadScope::ReadScope() { ++t_read_scopes; }

ReadScope::~ReadScope() {
  if (--t_read_scopes > 0) return;
  std::vector<void (*)()> ends;
  ends.swap(t_read_scope_ends);
  for (void (*release)() : ends) release();
}

bool ReadScope::Active() { return t_read_scopes > 0; }

void ReadScope::AtEnd(void (*release)()) {
  if (t_read_scopes == 0) return;
  if (std::find(t_read_scope_ends.begin(), t_read_scope_ends.end(), release) ==
      t_read_scope_ends.end()) {
    t_read_scope_ends.push_back(release);
  }
}

}  // namespace driftless::provider
