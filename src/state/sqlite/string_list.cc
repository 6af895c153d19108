#include "state/sqlite/string_list.h"

#include "value/value.h"

namespace driftless::state::sqlite_detail {

using value::Value;

std::string EncodeStringList(const std::vector<std::string>& items) {
  Value::List list;
  list.reserve(items.size());
  for (const auto& s : items) list.push_back(Value::String(s));
  return value::ToJson(Value::MakeList(std::move(list)));
}

bool DecodeStringList(std::string_view json, std::vector<std::string>* out) {
  out->clear();
  if (json == "[]") return true;  // the common case: no dependencies
  Result<Value> v = value::ParseJson(json);
  if (!v.ok() || !v->is_list()) return false;
  out->reserve(v->as_list().size());
  for (const Value& item : v->as_list()) {
    if (!item.is_string()) return false;
    out->push_back(item.as_string());
  }
  return true;
}

}  // namespace driftless::state::sqlite_detail
