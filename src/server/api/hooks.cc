#include "server/api/hooks.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <sys/stat.h>

#include <atomic>
#include <memory>
#include <optional>
#include <utility>

#include "base/file_util.h"
#include "base/hash.h"
#include "value/value.h"

namespace driftless::server::api {

using value::Value;

Result<std::string> ReadWebhookSecret(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    return MakeError("--webhook-secret-file " + path + ": cannot be read (it does not exist)");
  }
  if (!S_ISREG(st.st_mode)) {
    return MakeError("--webhook-secret-file " + path + ": is not a regular file");
  }
  if ((st.st_mode & S_IROTH) != 0) {
    return MakeError("--webhook-secret-file " + path +
                     ": every user of this machine can read it; make it private first "
                     "(chmod 600 '" +
                     path + "')");
  }
  Result<std::string> text = ReadFileToString(path);
  if (!text.ok()) return MakeError("--webhook-secret-file " + path + ": " + text.error().message);
  std::string secret = std::move(*text);
  if (!secret.empty() && secret.back() == '\n') secret.pop_back();
  if (!secret.empty() && secret.back() == '\r') secret.pop_back();
  if (secret.empty()) {
    return MakeError("--webhook-secret-file " + path +
                     ": is empty; put the webhook's secret in it (one line)");
  }
  return secret;
}

bool ValidSha256Signature(std::string_view header, std::string_view secret, std::string_view body) {
  constexpr std::string_view kPrefix = "sha256=";
  if (header.size() != kPrefix.size() + 2 * SHA256_DIGEST_LENGTH) return false;
  std::string sent(header);
  for (char& c : sent) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  if (sent.compare(0, kPrefix.size(), kPrefix) != 0) return false;
  sent.erase(0, kPrefix.size());
  for (char c : sent) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  const std::string expected = HmacSha256Hex(secret, body);
  return expected.size() == sent.size() &&
         CRYPTO_memcmp(expected.data(), sent.data(), sent.size()) == 0;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  unsigned char da[SHA256_DIGEST_LENGTH];
  unsigned char db[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(a.data()), a.size(), da);
  SHA256(reinterpret_cast<const unsigned char*>(b.data()), b.size(), db);
  // Equal digests of different inputs are out of reach; the length check only settles it.
  return CRYPTO_memcmp(da, db, sizeof(da)) == 0 && a.size() == b.size();
}

namespace {

// What a hook says of itself once its provider is known.
struct Hook {
  std::string provider;  ///< "github", "gitlab", "generic", or "unknown"
  std::string event;     ///< the provider's event header ("" when none)
  std::string delivery;  ///< the delivery id ("" when none)
  bool valid = false;    ///< the signature (or token) is right
  std::string problem;   ///< why it is not valid
};

Hook Verify(const http::Request& request, const std::string& secret) {
  Hook h;
  std::string_view gh_sig = request.Header("x-hub-signature-256");
  std::string_view gh_event = request.Header("x-github-event");
  std::string_view gl_token = request.Header("x-gitlab-token");
  std::string_view gl_event = request.Header("x-gitlab-event");
  std::string_view dl_sig = request.Header("x-driftless-signature");
  if (!gh_sig.empty() || !gh_event.empty() || !request.Header("x-hub-signature").empty()) {
    h.provider = "github";
    h.event = http::Printable(gh_event, 64);
    h.delivery = std::string(request.Header("x-github-delivery"));
    if (gh_sig.empty()) {
      h.problem = "a GitHub hook needs an X-Hub-Signature-256 header (set a secret on the hook)";
    } else if (!ValidSha256Signature(gh_sig, secret, request.body)) {
      h.problem =
          "X-Hub-Signature-256 is not sha256=<the HMAC-SHA256 of the body> with this "
          "server's secret";
    } else {
      h.valid = true;
    }
  } else if (!gl_token.empty() || !gl_event.empty()) {
    h.provider = "gitlab";
    h.event = http::Printable(gl_event, 64);
    h.delivery = std::string(request.Header("x-gitlab-event-uuid"));
    if (gl_token.empty()) {
      h.problem = "a GitLab hook needs an X-Gitlab-Token header (set a secret token on the hook)";
    } else if (!ConstantTimeEquals(gl_token, secret)) {
      h.problem = "X-Gitlab-Token is not this server's secret";
    } else {
      h.valid = true;
    }
  } else if (!dl_sig.empty()) {
    h.provider = "generic";
    h.event = http::Printable(request.Header("x-driftless-event"), 64);
    h.delivery = std::string(request.Header("x-driftless-delivery"));
    if (!ValidSha256Signature(dl_sig, secret, request.body)) {
      h.problem =
          "X-Driftless-Signature is not sha256=<the HMAC-SHA256 of the body> with this "
          "server's secret";
    } else {
      h.valid = true;
    }
  } else {
    h.provider = "unknown";
    h.problem =
        "no signature: send X-Hub-Signature-256 (GitHub), X-Gitlab-Token (GitLab) or "
        "X-Driftless-Signature: sha256=<hex HMAC-SHA256 of the body>";
  }
  return h;
}

// What the hook handler shares between requests.
struct HookShared {
  metrics::Counter* requests = nullptr;
  std::atomic<int64_t> last_prune{0};
};

}  // namespace

Status AddHookRoutes(http::Router& router, const ApiContext& context) {
  auto shared = std::make_shared<HookShared>();
  if (context.metrics != nullptr) {
    shared->requests = &context.metrics->AddCounter(
        "driftless_webhook_requests_total",
        "Git webhook requests by provider and result (accepted, duplicate, ping, unauthorized, "
        "too_large, disabled, bad_request)",
        {"provider", "result"});
  }
  return router.AddSync(
      "POST", "/api/v1/hooks/git",
      [context, shared](const http::Request& request) {
        auto count = [&](const std::string& provider, const std::string& result) {
          if (shared->requests != nullptr) shared->requests->Add({provider, result});
        };
        if (context.webhook_secret.empty()) {
          count("unknown", "disabled");
          return http::Response::Error(
              403, "webhooks_disabled",
              "POST /api/v1/hooks/git: no webhook secret is configured; start driftless serve "
              "with --webhook-secret-file FILE");
        }
        if (request.body.size() > kMaxHookBodyBytes) {
          count("unknown", "too_large");
          return http::Response::Error(413, "payload_too_large",
                                       "POST /api/v1/hooks/git: the body is larger than " +
                                           std::to_string(kMaxHookBodyBytes) + " bytes");
        }
        Hook hook = Verify(request, context.webhook_secret);
        state::AuditEntry entry;
        entry.who = "webhook:" + hook.provider;
        entry.action = "webhook.git";
        if (!hook.valid) {
          count(hook.provider, "unauthorized");
          entry.subject = "POST /api/v1/hooks/git";
          entry.result = "refused";
          entry.reason = hook.problem;
          Status audited = Audit(context, request, std::move(entry));
          std::string message = "POST /api/v1/hooks/git: " + hook.problem;
          if (!audited.ok())
            message += " (and the audit log failed: " + audited.error().message + ")";
          return http::Response::Error(401, "bad_signature", message);
        }
        if (!hook.delivery.empty() && !http::AcceptableRequestId(hook.delivery)) {
          count(hook.provider, "bad_request");
          return http::Response::Error(400, "bad_delivery_id",
                                       "POST /api/v1/hooks/git: the delivery id '" +
                                           http::Printable(hook.delivery, 64) +
                                           "' is not 1 to 128 characters of [A-Za-z0-9._:-]");
        }
        Value body = Value::MakeObject();
        body.Set("provider", Value::String(hook.provider));
        body.Set("event", Value::String(hook.event));
        body.Set("delivery", Value::String(hook.delivery));
        if (hook.provider == "github" && hook.event == "ping") {
          count(hook.provider, "ping");
          body.Set("status", Value::String("pong"));
          return http::Response::Json(200, body);
        }
        std::string note;
        if (!hook.delivery.empty()) {
          Result<StorePool::Lease> store = context.stores->Acquire();
          Result<bool> fresh =
              store.ok() ? (*store)->RememberDelivery(hook.provider, hook.delivery, context.Now())
                         : Result<bool>(store.error());
          if (fresh.ok() && !*fresh) {
            count(hook.provider, "duplicate");
            body.Set("status", Value::String("duplicate"));
            body.Set("message", Value::String("delivery " + hook.delivery +
                                              " was received already; nothing is fetched again"));
            return http::Response::Json(200, body);
          }
          if (!fresh.ok()) {
            // A fetch is harmless: rather fetch twice than lose a push to a state hiccup.
            note = "the delivery could not be remembered (" + fresh.error().message +
                   "); fetching anyway";
          } else {
            const int64_t now = context.Now();
            int64_t last = shared->last_prune.load();
            if (now - last >= 3600 && shared->last_prune.compare_exchange_strong(last, now)) {
              (void)(*store)->PruneDeliveries(now - kDeliveryRetentionSeconds);
            }
          }
        }
        if (context.controller != nullptr) context.controller->TriggerFetch();
        // Every server on the same state hears of it (state::kFetchChannel), so that the one
        // that owns an environment fetches too; a failure only loses that hint.
        if (Result<StorePool::Lease> s = context.stores->Acquire(); s.ok()) {
          std::string what = hook.provider + (hook.event.empty() ? "" : " " + hook.event);
          (void)(*s)->Notify(state::kFetchChannel, what.substr(0, 200));
        }
        count(hook.provider, "accepted");
        entry.subject = hook.event.empty() ? "fetch" : hook.event + ": fetch";
        if (!hook.delivery.empty()) entry.subject += " (delivery " + hook.delivery + ")";
        entry.result = "allowed";
        (void)Audit(context, request, std::move(entry));
        body.Set("status", Value::String("queued"));
        body.Set("message",
                 Value::String(note.empty() ? "a fetch of the repository is queued" : note));
        return http::Response::Json(202, body);
      },
      {"", true});
}

}  // namespace driftless::server::api
