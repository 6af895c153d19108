#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/diagnostics.h"
#include "base/result.h"
#include "value/value.h"

namespace driftless::notify {

/// The longest `timeout:` a sink may have.
inline constexpr int64_t kMaxSinkTimeoutSeconds = 3600;

/// How a sink delivers.
enum class SinkKind { kWebhook, kSlack, kExec };

/// "webhook", "slack" or "exec".
std::string_view SinkKindName(SinkKind kind);

/// One entry of driftless.yaml's `notify:` list, as written: URLs, commands and secrets keep
/// their `${...}` expressions until delivery (Resolve), so nothing resolved is ever stored.
struct SinkConfig {
  std::string name;
  std::vector<std::string> on;            ///< event types, or {"*"}
  std::vector<std::string> environments;  ///< names or globs; empty: every environment
  SinkKind kind = SinkKind::kWebhook;
  value::Value target;  ///< webhook/slack: URL string; exec: a string (sh -c) or a list (argv)
  value::Value secret;  ///< webhook HMAC key (may be `${secret.NAME}`), or null
  int64_t remind_seconds = 0;  ///< drift reminders after this long without one; 0: never
  /// How long one delivery may take (`timeout:`, at most an hour); 0: the defaults of
  /// DeliveryLimits (10 s for an HTTP request, 30 s for a command).
  int64_t timeout_seconds = 0;
  SourcePos pos;  ///< where the entry starts

  /// True when the sink takes events of `type` in environment `env`.
  bool Wants(const std::string& type, const std::string& env) const;
};

/// Parses the raw `notify:` value (null: no sinks). Problems go to diags with file:line:col;
/// the sinks with problems are left out.
std::vector<SinkConfig> ParseSinks(const value::Value& raw, const std::string& file,
                                   Diagnostics& diags);

/// A secret's value by name, or std::nullopt when it is not set.
using SecretLookup = std::function<std::optional<std::string>(const std::string& name)>;

/// A sink with its expressions resolved for one environment. Held in memory for one delivery.
struct ResolvedSink {
  std::string name;
  SinkKind kind = SinkKind::kWebhook;
  std::string url;                ///< webhook, slack
  std::string secret;             ///< webhook HMAC key, "" for none
  std::string shell_command;      ///< exec as a string: run with /bin/sh -c
  std::vector<std::string> argv;  ///< exec as a list: run directly
  int64_t timeout_seconds = 0;    ///< as SinkConfig::timeout_seconds
  /// The values of the secrets used, so that an error text that echoes one can be redacted.
  std::vector<std::string> secret_values;

  /// `text` with every secret value used replaced by "(sensitive)".
  std::string Redact(std::string text) const;
};

/// Resolves `${env}`, `${project}` and `${secret.NAME}` in the sink's URL, command and secret
/// for environment `env`. Fails when a secret is not set; the message names it, never a value.
Result<ResolvedSink> Resolve(const SinkConfig& sink, const std::string& env,
                             const std::string& project, const SecretLookup& secret);

/// Parses "24h", "30m", "10s", "2d" or plain seconds; -1 when malformed.
int64_t ParseDurationSeconds(std::string_view text);

}  // namespace driftless::notify
