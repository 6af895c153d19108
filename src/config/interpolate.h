#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/diagnostics.h"
#include "value/value.h"

namespace driftless::config {

/// True when s holds a `${` expression (`$${` is an escaped literal `${`).
bool HasInterpolation(std::string_view s);

/// One `${...}` expression.
struct Reference {
  enum class Type { kEnv, kBranch, kCommit, kProject, kVar, kSecret, kResource };
  Type type = Type::kEnv;
  std::string name;     ///< variable or secret name
  std::string address;  ///< for kResource: "kind/name"
  std::string attr;     ///< for kResource: attribute path ("name", "env.DB", "sha256")
  std::string text;     ///< the expression as written, without ${ }
  uint32_t offset = 0;  ///< byte offset of `${` in the string
  SourcePos pos;        ///< where the expression is written
};

/// Parses every `${...}` in s. Malformed expressions go to diags at `pos` (shifted by the
/// expression's offset).
std::vector<Reference> ParseReferences(std::string_view s, const SourcePos& pos,
                                       Diagnostics& diags);

/// Every resource reference inside a value (strings at any depth).
void CollectResourceReferences(const value::Value& v, const std::string& file,
                               std::vector<Reference>& out, Diagnostics& diags);

/// What expressions resolve against.
struct Scope {
  std::string env, branch, commit, project;
  const value::Value* vars = nullptr;  ///< merged variables (object)
  /// A secret's value, or std::nullopt when it is not set.
  std::function<std::optional<std::string>(const std::string& name)> secret;
  /// When a secret is missing: true reports an error, false yields an unknown sensitive value
  /// (validate without secrets).
  bool secrets_required = true;
  /// A resource attribute: the value, Value::Unknown() when known only after apply, or
  /// std::nullopt when the resource has no such attribute.
  std::function<std::optional<value::Value>(const std::string& address, const std::string& attr)>
      resource;
};

/// Resolves every expression inside `raw`. A string that is exactly one expression takes the
/// referenced value's type; otherwise the parts are joined as text. A value built from a secret
/// is sensitive; one built from an unknown value is unknown. Problems go to diags with
/// file:line:col.
value::Value Interpolate(const value::Value& raw, const Scope& scope, const std::string& file,
                         Diagnostics& diags);

/// The environment variable that holds secret NAME: DRIFTLESS_SECRET_NAME.
std::string SecretEnvName(const std::string& name);

}  // namespace driftless::config
