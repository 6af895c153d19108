#include "notify/sink.h"

#include <algorithm>
#include <cstdlib>
#include <set>

#include "base/strings.h"
#include "config/interpolate.h"
#include "notify/event.h"

namespace driftless::notify {

using value::Value;

namespace {

SourcePos At(const std::string& file, const Value& v) { return {file, v.line(), v.column()}; }

// A string or a list of strings; false (with an error) otherwise.
bool StringList(const Value& v, const std::string& file, const std::string& what,
                std::vector<std::string>& out, Diagnostics& diags) {
  if (v.is_string()) {
    out.push_back(v.as_string());
    return true;
  }
  if (!v.is_list()) {
    diags.Error(At(file, v), what + " must be a list of strings");
    return false;
  }
  for (const Value& item : v.as_list()) {
    if (!item.is_string() || item.as_string().empty()) {
      diags.Error(At(file, item), what + " must be a list of non-empty strings");
      return false;
    }
    out.push_back(item.as_string());
  }
  return true;
}

// Only ${env}, ${project} and ${secret.NAME} mean something to a sink.
void CheckExpressions(const Value& v, const std::string& file, const std::string& where,
                      Diagnostics& diags) {
  if (v.is_list()) {
    for (const Value& item : v.as_list()) CheckExpressions(item, file, where, diags);
    return;
  }
  if (!v.is_string()) return;
  for (const config::Reference& r : config::ParseReferences(v.as_string(), At(file, v), diags)) {
    using T = config::Reference::Type;
    if (r.type != T::kEnv && r.type != T::kProject && r.type != T::kSecret) {
      diags.Error(r.pos, "${" + r.text + "} is not available in " + where,
                  "a sink may use ${env}, ${project} and ${secret.NAME}");
    }
  }
}

}  // namespace

std::string_view SinkKindName(SinkKind kind) {
  switch (kind) {
    case SinkKind::kWebhook:
      return "webhook";
    case SinkKind::kSlack:
      return "slack";
    case SinkKind::kExec:
      return "exec";
  }
  return "?";
}

bool SinkConfig::Wants(const std::string& type, const std::string& env) const {
  bool type_ok = std::any_of(on.begin(), on.end(), [&](const std::string& t) {
    return t == "*" || t == type || (type == "drift.reminder" && t == "drift.detected");
  });
  if (!type_ok) return false;
  if (environments.empty()) return true;
  return std::any_of(environments.begin(), environments.end(),
                     [&](const std::string& g) { return GlobMatch(g, env); });
}

int64_t ParseDurationSeconds(std::string_view text) {
  if (text.empty()) return -1;
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 12) return -1;
  int64_t n = std::strtoll(std::string(text.substr(0, digits)).c_str(), nullptr, 10);
  std::string_view unit = text.substr(digits);
  int64_t mult = unit.empty() || unit == "s" ? 1
                 : unit == "m"               ? 60
                 : unit == "h"               ? 3600
                 : unit == "d"               ? 86400
                                             : -1;
  return mult < 0 ? -1 : n * mult;
}

std::vector<SinkConfig> ParseSinks(const Value& raw, const std::string& file, Diagnostics& diags) {
  std::vector<SinkConfig> sinks;
  if (raw.is_null()) return sinks;
  if (!raw.is_list()) {
    diags.Error(At(file, raw), "`notify:` must be a list of sinks",
                "for example `- {name: ops, on: [\"*\"], webhook: \"https://...\"}`");
    return sinks;
  }
  static const std::set<std::string, std::less<>> kKeys = {
      "name", "on", "environments", "webhook", "slack", "exec", "secret", "remind", "timeout"};
  std::set<std::string> names;
  for (const Value& entry : raw.as_list()) {
    const size_t errors_before = diags.ErrorCount();
    SinkConfig s;
    s.pos = At(file, entry);
    if (!entry.is_object()) {
      diags.Error(s.pos,
                  "a `notify:` entry must be a mapping with `name`, `on` and one of "
                  "`webhook`, `slack` or `exec`");
      continue;
    }
    for (const auto& [key, v] : entry.as_object()) {
      if (kKeys.count(key) == 0) {
        diags.Error(
            At(file, v), "unknown key `" + key + "` in a `notify:` entry",
            "expected name, on, environments, webhook, slack, exec, secret, remind or timeout");
      }
    }
    const Value* name = entry.Find("name");
    if (name == nullptr || !name->is_string() || name->as_string().empty()) {
      diags.Error(name ? At(file, *name) : s.pos, "a `notify:` entry needs a `name:` (a string)");
    } else {
      s.name = name->as_string();
      if (!names.insert(s.name).second) {
        diags.Error(At(file, *name), "sink `" + s.name + "` is declared twice in `notify:`");
      }
    }
    const std::string where = s.name.empty() ? "a sink" : "sink " + s.name;
    if (const Value* on = entry.Find("on")) {
      if (StringList(*on, file, where + ": `on`", s.on, diags)) {
        const auto& types = EventTypes();
        for (size_t i = 0; i < s.on.size(); ++i) {
          if (s.on[i] == "*" || std::binary_search(types.begin(), types.end(), s.on[i])) continue;
          const Value& at = on->is_list() ? on->as_list()[i] : *on;
          diags.Error(At(file, at), where + ": unknown event type `" + s.on[i] + "`",
                      "use \"*\" or one of " + Join(types, ", "));
        }
      }
    } else {
      diags.Error(s.pos, where + " has no `on:`", "list event types, or [\"*\"] for all");
    }
    if (const Value* envs = entry.Find("environments")) {
      (void)StringList(*envs, file, where + ": `environments`", s.environments, diags);
    }
    int kinds = 0;
    for (SinkKind k : {SinkKind::kWebhook, SinkKind::kSlack, SinkKind::kExec}) {
      const Value* v = entry.Find(SinkKindName(k));
      if (v == nullptr) continue;
      ++kinds;
      s.kind = k;
      s.target = *v;
      const bool list_ok = k == SinkKind::kExec && v->is_list() && !v->as_list().empty() &&
                           std::all_of(v->as_list().begin(), v->as_list().end(),
                                       [](const Value& a) { return a.is_string(); });
      if (!(v->is_string() && !v->as_string().empty()) && !list_ok) {
        diags.Error(At(file, *v), where + ": `" + std::string(SinkKindName(k)) + "` must be " +
                                      (k == SinkKind::kExec ? "a command string or a list of "
                                                              "strings"
                                                            : "a URL string"));
      }
      CheckExpressions(*v, file, where, diags);
      if (k != SinkKind::kExec && v->is_string() && !config::HasInterpolation(v->as_string()) &&
          !StartsWith(v->as_string(), "http://") && !StartsWith(v->as_string(), "https://")) {
        diags.Error(At(file, *v), where + ": `" + std::string(SinkKindName(k)) +
                                      "` must be an http:// or https:// URL");
      }
    }
    if (kinds != 1) {
      diags.Error(s.pos,
                  where + (kinds == 0 ? " has no destination" : " has more than one destination"),
                  "give exactly one of `webhook: URL`, `slack: URL` or `exec: COMMAND`");
    }
    if (const Value* secret = entry.Find("secret")) {
      if (!secret->is_string() || secret->as_string().empty()) {
        diags.Error(At(file, *secret), where + ": `secret` must be a string");
      } else if (kinds == 1 && s.kind != SinkKind::kWebhook) {
        diags.Error(At(file, *secret), where + ": `secret` signs webhook requests only");
      } else {
        CheckExpressions(*secret, file, where, diags);
        s.secret = *secret;
        if (!config::HasInterpolation(secret->as_string())) {
          diags.Warning(At(file, *secret),
                        where + ": the webhook secret is written in clear in driftless.yaml",
                        "use \"${secret.NAME}\" and set DRIFTLESS_SECRET_NAME");
        }
      }
    }
    if (const Value* remind = entry.Find("remind")) {
      int64_t seconds = remind->is_string() ? ParseDurationSeconds(remind->as_string())
                        : remind->is_int()  ? remind->as_int()
                                            : -1;
      if (seconds <= 0) {
        diags.Error(At(file, *remind), where + ": `remind` must be a duration",
                    "for example 24h, 30m or 90s");
      } else {
        s.remind_seconds = seconds;
      }
    }
    if (const Value* timeout = entry.Find("timeout")) {
      int64_t seconds = timeout->is_string() ? ParseDurationSeconds(timeout->as_string())
                        : timeout->is_int()  ? timeout->as_int()
                                             : -1;
      if (seconds <= 0 || seconds > kMaxSinkTimeoutSeconds) {
        diags.Error(At(file, *timeout),
                    where + ": `timeout` must be a duration from 1s to 1h (one delivery's limit)",
                    "for example 30s or 5m");
      } else {
        s.timeout_seconds = seconds;
      }
    }
    if (diags.ErrorCount() == errors_before) sinks.push_back(std::move(s));
  }
  return sinks;
}

std::string ResolvedSink::Redact(std::string text) const {
  for (const std::string& v : secret_values) {
    for (size_t at = text.find(v); at != std::string::npos; at = text.find(v, at)) {
      text.replace(at, v.size(), "(sensitive)");
      at += 11;
    }
  }
  return text;
}

Result<ResolvedSink> Resolve(const SinkConfig& sink, const std::string& env,
                             const std::string& project, const SecretLookup& secret) {
  config::Scope scope;
  scope.env = env;
  scope.project = project;
  static const Value kNoVars = Value::MakeObject();
  scope.vars = &kNoVars;
  ResolvedSink r;
  scope.secret = [&](const std::string& name) {
    std::optional<std::string> v = secret ? secret(name) : std::nullopt;
    if (v && !v->empty()) r.secret_values.push_back(*v);
    return v;
  };
  Diagnostics diags;
  const std::string file = sink.pos.file;
  r.name = sink.name;
  r.kind = sink.kind;
  r.timeout_seconds = sink.timeout_seconds;
  Value target = config::Interpolate(sink.target, scope, file, diags);
  Value key =
      sink.secret.is_null() ? Value() : config::Interpolate(sink.secret, scope, file, diags);
  if (diags.HasErrors()) {
    // The messages name expressions and secrets, never their values.
    return MakeError("sink " + sink.name + ": " + diags.items().front().message);
  }
  if (sink.kind == SinkKind::kExec) {
    if (target.is_list()) {
      for (const Value& a : target.as_list()) r.argv.push_back(a.ScalarText());
    } else {
      r.shell_command = target.ScalarText();
    }
  } else {
    r.url = target.ScalarText();
  }
  if (key.is_string()) r.secret = key.as_string();
  return r;
}

}  // namespace driftless::notify
