#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "base/result.h"

namespace driftless::value {

/// A JSON-like value with a source position and a sensitivity flag.
/// Objects keep their keys sorted, so equality and serialisation are canonical.
class Value {
 public:
  enum class Type : uint8_t { kNull, kBool, kInt, kDouble, kString, kList, kObject, kUnknown };
  using List = std::vector<Value>;
  using Member = std::pair<std::string, Value>;
  using Object = std::vector<Member>;

  Value() = default;
  static Value Null() { return Value(); }
  static Value Bool(bool b);
  static Value Int(int64_t i);
  static Value Double(double d);
  static Value String(std::string s);
  static Value MakeList(List items = {});
  static Value MakeObject(Object members = {});
  /// A value that is known only after apply (a computed attribute of a resource that changes).
  static Value Unknown();

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  bool is_bool() const { return type_ == Type::kBool; }
  bool is_int() const { return type_ == Type::kInt; }
  bool is_double() const { return type_ == Type::kDouble; }
  bool is_number() const { return is_int() || is_double(); }
  bool is_string() const { return type_ == Type::kString; }
  bool is_list() const { return type_ == Type::kList; }
  bool is_object() const { return type_ == Type::kObject; }
  bool is_unknown() const { return type_ == Type::kUnknown; }
  bool is_scalar() const { return !is_list() && !is_object(); }

  bool as_bool() const { return std::get<bool>(data_); }
  int64_t as_int() const { return std::get<int64_t>(data_); }
  double as_double() const {
    return is_int() ? static_cast<double>(as_int()) : std::get<double>(data_);
  }
  const std::string& as_string() const { return std::get<std::string>(data_); }
  std::string& as_string() { return std::get<std::string>(data_); }
  const List& as_list() const { return std::get<List>(data_); }
  List& as_list() { return std::get<List>(data_); }
  const Object& as_object() const { return std::get<Object>(data_); }
  Object& as_object() { return std::get<Object>(data_); }

  /// Member lookup on an object; nullptr when absent or not an object.
  const Value* Find(std::string_view key) const;
  Value* Find(std::string_view key);
  /// Follows a dotted path ("spec.env.DEBUG"); list elements by index ("ports.0").
  const Value* FindPath(std::string_view dotted) const;
  /// Inserts or replaces a member, keeping keys sorted. The value must be an object.
  Value& Set(std::string key, Value v);
  /// Removes a member if present; returns whether it was.
  bool Erase(std::string_view key);
  /// Sorts members after bulk construction; returns the first duplicate key, or "" if none.
  std::string SortMembers();

  uint32_t line() const { return line_; }
  uint32_t column() const { return column_; }
  void set_mark(uint32_t line, uint32_t column) {
    line_ = line;
    column_ = column;
  }

  /// Sensitive values are never shown or stored in plain text.
  bool sensitive() const { return sensitive_; }
  void set_sensitive(bool s) { sensitive_ = s; }
  /// True when this value or anything inside it is sensitive.
  bool ContainsSensitive() const;
  /// True when this value or anything inside it is unknown.
  bool ContainsUnknown() const;

  /// Structural equality; ignores marks and sensitivity; 1 == 1.0.
  bool operator==(const Value& other) const;
  bool operator!=(const Value& other) const { return !(*this == other); }

  /// A one-line human rendering of a scalar (strings unquoted); used in messages.
  std::string ScalarText() const;

 private:
  uint32_t line_ = 0;
  uint32_t column_ = 0;
  // The variant's tail padding (7 of its 40 bytes) holds the two members after it: a Value is
  // 48 bytes instead of 56, and there are millions of them in a large run.
  [[no_unique_address]] std::variant<std::monostate, bool, int64_t, double, std::string, List,
                                     Object>
      data_;
  Type type_ = Type::kNull;
  bool sensitive_ = false;
};
static_assert(sizeof(Value) == 48, "Value is meant to be 48 bytes (see its members)");

/// "string", "list", ... for messages.
std::string_view TypeName(Value::Type t);

/// Canonical JSON: sorted keys, no insignificant spaces, unknown as {"$unknown":true}.
/// Sensitive values are written as they are: callers redact first (see Redact in render.h).
std::string ToJson(const Value& v);
/// Appends ToJson(Redact(v)) to `out` (render.h), without making the redacted copy.
void AppendRedactedJson(std::string& out, const Value& v);
/// Indented JSON for people (2 spaces).
std::string ToPrettyJson(const Value& v);
/// Parses JSON (the inverse of ToJson).
Result<Value> ParseJson(std::string_view text);

}  // namespace driftless::value
