// FileTarget::Normalize: checks a declared spec and returns its canonical form.

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "base/hash.h"
#include "providers/file/file_target.h"
#include "providers/file/paths.h"

namespace driftless::providers::file {
namespace {

using provider::FieldError;
using value::Value;

// A string value that keeps the position of the value it replaces.
Value StringLike(const Value& original, std::string text) {
  Value v = Value::String(std::move(text));
  v.set_mark(original.line(), original.column());
  v.set_sensitive(original.sensitive());
  return v;
}

std::string TypeOfValue(const Value& v) { return std::string(value::TypeName(v.type())); }

// Collects the problems of one spec and its normalised form.
class Normalizer {
 public:
  Normalizer(const std::string& kind, const Value& spec, const std::string& root,
             std::vector<FieldError>& errors)
      : kind_(kind), spec_(spec), root_(root), errors_(errors) {}

  void Error(std::string field, std::string message) {
    errors_.push_back(FieldError{std::move(field), std::move(message)});
    ++count_;
  }
  int count() const { return count_; }
  Value& out() { return out_; }

  // The declared value of a field, nullptr when absent (or null, which means the same).
  const Value* Get(std::string_view field) const {
    const Value* v = spec_.Find(field);
    if (v == nullptr || v->is_null()) return nullptr;
    return v;
  }

  // A declared string field: nullptr when absent or reported; unknown values are copied as they
  // are and also give nullptr.
  const Value* GetString(std::string_view field) {
    const Value* v = Get(field);
    if (v == nullptr) return nullptr;
    if (v->is_unknown()) {
      out_.Set(std::string(field), *v);
      return nullptr;
    }
    if (!v->is_string()) {
      Error(std::string(field), std::string(field) + " must be a string, not " + TypeOfValue(*v));
      return nullptr;
    }
    return v;
  }

  void CheckUnknownFields(const provider::ResourceSchema& schema) {
    for (const auto& [key, v] : spec_.as_object()) {
      if (schema.Find(key) != nullptr) continue;
      std::string known;
      for (const auto& f : schema.fields) {
        if (f.computed) continue;
        if (!known.empty()) known += ", ";
        known += f.name;
      }
      Error(key, "unknown field \"" + key + "\" of " + kind_ + " (known: " + known + ")");
    }
  }

  void Name() {
    if (const Value* v = GetString("name")) out_.Set("name", *v);
  }

  // `path` (required): relative and inside the root.
  void Path() {
    if (Get("path") == nullptr) {
      Error("path", "path is required: where the object is, relative to the target root " + root_);
      return;
    }
    const Value* v = GetString("path");
    if (v == nullptr) return;
    std::string problem = PathProblem(v->as_string(), root_);
    if (!problem.empty()) {
      Error("path", problem);
      return;
    }
    out_.Set("path", *v);
  }

  // `mode`: octal digits. A number is read by its decimal digits, as the engine's coercion of
  // a string field does (YAML reads an unquoted 0644 as 644).
  void Mode() {
    const Value* v = Get("mode");
    if (v == nullptr) return;
    std::string text;
    if (v->is_int()) {
      text = std::to_string(v->as_int());
    } else {
      v = GetString("mode");
      if (v == nullptr) return;
      text = v->as_string();
    }
    std::optional<unsigned> mode = ParseMode(text);
    if (!mode) {
      Error("mode",
            "mode \"" + text + "\" is not an octal mode of at most \"07777\" (such as \"0644\")");
      return;
    }
    out_.Set("mode", StringLike(*v, FormatMode(*mode)));
  }

  // `type` is the kind's own type; declaring another one is a mistake.
  void Type(const char* type) {
    const Value* v = Get("type");
    if (v != nullptr && !v->is_unknown() && !(v->is_string() && v->as_string() == type)) {
      Error("type", "type of a " + kind_ + " is always \"" + type +
                        "\" (the provider fills it); leave it out");
      return;
    }
    Computed("type", Value::String(type));
  }

  // `owner` or `group`: a name or a numeric id (an integer is taken as an id).
  template <typename Canonical>
  void Principal(const std::string& field, Canonical canonical) {
    const Value* v = Get(field);
    if (v == nullptr) return;
    std::string text;
    if (v->is_int()) {
      if (v->as_int() < 0 || v->as_int() >= 4294967295LL) {
        Error(field, field + " " + std::to_string(v->as_int()) + " is not a valid id");
        return;
      }
      text = std::to_string(v->as_int());
    } else {
      v = GetString(field);
      if (v == nullptr) return;
      text = v->as_string();
      if (text.empty() || text.find_first_of(std::string_view(":\n\0", 3)) != std::string::npos) {
        Error(field, field + " \"" + text + "\" is not a valid name or id");
        return;
      }
    }
    out_.Set(field, StringLike(*v, canonical(text)));
  }

  void Computed(std::string field, Value v) { out_.Set(std::move(field), std::move(v)); }

  void Content(const provider::ReadRepoFile& read_file) {
    const Value* content = Get("content");
    const Value* source = Get("source");
    if (content != nullptr && source != nullptr) {
      Error("source", "declare either content or source, not both");
      return;
    }
    if (content == nullptr && source == nullptr) {
      Error("content", "one of content or source is required");
      return;
    }
    Value text;
    if (content != nullptr) {
      if (content->is_unknown()) {
        text = *content;
      } else if (!content->is_string()) {
        Error("content", "content must be a string, not " + TypeOfValue(*content));
        return;
      } else {
        text = *content;
      }
    } else if (source->is_unknown()) {
      out_.Set("source", *source);
      text = Value::Unknown();
    } else if (!source->is_string()) {
      Error("source",
            "source must be a string (a path in the repository), not " + TypeOfValue(*source));
      return;
    } else if (source->as_string().empty()) {
      Error("source", "source is empty: name a file of the repository");
      return;
    } else if (!read_file) {
      Error("source", "source \"" + source->as_string() +
                          "\" cannot be read: no repository is available here");
      return;
    } else {
      Result<std::string> bytes = read_file(source->as_string());
      if (!bytes.ok()) {
        Error("source",
              "cannot read source \"" + source->as_string() + "\": " + bytes.error().message);
        return;
      }
      out_.Set("source", *source);
      text = StringLike(*source, std::move(bytes).value());
      text.set_sensitive(false);
    }
    out_.Set("content", text);
    if (text.is_unknown()) {
      Computed("sha256", Value::Unknown());
      Computed("size", Value::Unknown());
      return;
    }
    Value sha = Value::String(Sha256Hex(text.as_string()));
    // The hash of a secret would let anyone guess a short one: it is as sensitive as the content.
    sha.set_sensitive(text.sensitive());
    Computed("sha256", std::move(sha));
    Computed("size", Value::Int(static_cast<int64_t>(text.as_string().size())));
  }

  void Purge() {
    if (Get("unmanaged_children") != nullptr) {
      Error("unmanaged_children",
            "unmanaged_children is reported by the provider (what purge would remove); declare "
            "purge: true instead");
    }
    const Value* purge = Get("purge");
    bool on = false;
    if (purge != nullptr) {
      if (purge->is_unknown()) {
        out_.Set("purge", *purge);
      } else if (!purge->is_bool()) {
        Error("purge", "purge must be true or false, not " + TypeOfValue(*purge));
      } else {
        on = purge->as_bool();
        out_.Set("purge", *purge);
      }
    }
    const Value* children = Get("managed_children");
    if (children != nullptr) {
      if (children->is_unknown()) {
        out_.Set("managed_children", *children);
      } else if (!children->is_list()) {
        Error("managed_children",
              "managed_children must be a list of paths, not " + TypeOfValue(*children));
      } else {
        std::vector<std::string> paths;
        std::string dir = DisplayPath(root_, Get("path") != nullptr && Get("path")->is_string()
                                                 ? Get("path")->as_string()
                                                 : "");
        const Value::List& items = children->as_list();
        for (size_t i = 0; i < items.size(); ++i) {
          std::string field = "managed_children." + std::to_string(i);
          if (!items[i].is_string()) {
            Error(field, "managed_children entries must be strings, not " + TypeOfValue(items[i]));
            continue;
          }
          std::string problem = PathProblem(items[i].as_string(), dir);
          if (!problem.empty()) {
            Error(field, "managed_children: " + problem);
            continue;
          }
          paths.push_back(items[i].as_string());
        }
        std::sort(paths.begin(), paths.end());
        paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
        Value::List list;
        for (auto& p : paths) list.push_back(Value::String(std::move(p)));
        Value v = Value::MakeList(std::move(list));
        v.set_mark(children->line(), children->column());
        out_.Set("managed_children", std::move(v));
      }
    }
    if (on) Computed("unmanaged_children", Value::MakeList());
  }

  void Target() {
    if (Get("target") == nullptr) {
      Error("target", "target is required: the text of the link (where it points)");
      return;
    }
    const Value* v = GetString("target");
    if (v == nullptr) return;
    const std::string& t = v->as_string();
    if (t.empty()) {
      Error("target", "target is empty: a symlink must point somewhere");
    } else if (t.find('\0') != std::string::npos) {
      Error("target", "target contains a NUL byte");
    } else if (t.size() > 4095) {
      Error("target", "target is longer than 4095 bytes");
    } else {
      out_.Set("target", *v);
    }
  }

 private:
  const std::string& kind_;
  const Value& spec_;
  const std::string& root_;
  std::vector<FieldError>& errors_;
  Value out_ = Value::MakeObject();
  int count_ = 0;
};

}  // namespace

Result<Value> FileTarget::Normalize(const std::string& kind, const Value& spec,
                                    const provider::ReadRepoFile& read_file,
                                    std::vector<FieldError>& errors) const {
  const provider::ResourceSchema* schema = nullptr;
  for (const auto& s : FileSchemas()) {
    if (s.kind == kind) schema = &s;
  }
  if (schema == nullptr) {
    return MakeError("the file provider has no kind \"" + kind +
                     "\" (it has file.file, file.directory, file.symlink)");
  }
  if (!spec.is_object()) {
    errors.push_back(FieldError{"", "the spec of " + kind + " must be a map"});
    return MakeError("the spec of " + kind + " must be a map");
  }
  size_t first_error = errors.size();
  Normalizer n(kind, spec, root_, errors);
  n.CheckUnknownFields(*schema);
  n.Name();
  n.Path();
  auto user = [this](const std::string& s) { return ids_.CanonicalUser(s); };
  auto group = [this](const std::string& s) { return ids_.CanonicalGroup(s); };
  if (kind == kFileKind) {
    n.Content(read_file);
    n.Mode();
    n.Principal("owner", user);
    n.Principal("group", group);
    n.Type("file");
  } else if (kind == kDirectoryKind) {
    n.Mode();
    n.Principal("owner", user);
    n.Principal("group", group);
    n.Purge();
    n.Type("directory");
  } else {
    n.Target();
    n.Type("symlink");
  }
  if (n.count() > 0) {
    std::string msg = "invalid " + kind + " spec: " + errors[first_error].message;
    if (n.count() > 1) msg += " (and " + std::to_string(n.count() - 1) + " more problems)";
    return MakeError(msg);
  }
  return std::move(n.out());
}

}  // namespace driftless::providers::file
