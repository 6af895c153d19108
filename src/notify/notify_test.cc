// Sinks as configured (parsing, errors with driftless.yaml:line:col, filters), the event's JSON
// form, signatures, the Slack payload, exec delivery, and the dispatcher's outbox semantics.

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "base/hash.h"
#include "base/identity.h"
#include "notify/deliver.h"
#include "notify/dispatcher.h"
#include "notify/event.h"
#include "notify/sink.h"
#include "state/sqlite/sqlite_state_store.h"
#include "yaml/yaml.h"

namespace driftless::notify {
namespace {

using value::Value;

std::vector<SinkConfig> Parse(const std::string& yaml, Diagnostics& diags) {
  std::vector<yaml::YamlDocument> docs = yaml::ParseYaml(yaml, "driftless.yaml", diags);
  EXPECT_EQ(docs.size(), 1u) << diags.ToString();
  const Value* notify = docs.empty() ? nullptr : docs[0].root.Find("notify");
  return ParseSinks(notify ? *notify : Value(), "driftless.yaml", diags);
}

TEST(SinkConfigTest, ParsesEveryKind) {
  Diagnostics diags;
  auto sinks = Parse(R"(notify:
  - name: ops
    on: [drift.detected, apply.failed]
    environments: [production, "pr-*"]
    slack: "${secret.SLACK}"
    remind: 24h
  - name: audit
    on: ["*"]
    webhook: "https://audit.example/hooks/${env}"
    secret: "${secret.AUDIT_HMAC}"
    timeout: 2m
  - name: script
    on: "*"
    exec: [/usr/bin/logger, -t, driftless]
)",
                     diags);
  ASSERT_FALSE(diags.HasErrors()) << diags.ToString();
  ASSERT_EQ(sinks.size(), 3u);
  EXPECT_EQ(sinks[0].kind, SinkKind::kSlack);
  EXPECT_EQ(sinks[0].remind_seconds, 86400);
  EXPECT_EQ(sinks[0].timeout_seconds, 0) << "the defaults";
  EXPECT_EQ(sinks[1].kind, SinkKind::kWebhook);
  EXPECT_EQ(sinks[1].timeout_seconds, 120);
  EXPECT_EQ(sinks[2].kind, SinkKind::kExec);
  EXPECT_TRUE(sinks[2].target.is_list());

  EXPECT_TRUE(sinks[0].Wants("drift.detected", "production"));
  EXPECT_TRUE(sinks[0].Wants("drift.reminder", "pr-12"));  // reminders follow drift.detected
  EXPECT_FALSE(sinks[0].Wants("drift.detected", "staging"));
  EXPECT_FALSE(sinks[0].Wants("apply.succeeded", "production"));
  EXPECT_TRUE(sinks[1].Wants("apply.succeeded", "anything"));
  EXPECT_TRUE(sinks[2].Wants("env.destroyed", "x"));
}

TEST(SinkConfigTest, ErrorsNameFileLineAndColumn) {
  Diagnostics diags;
  auto sinks = Parse(R"(notify:
  - name: a
    on: [drift.detectd]
    webhook: "https://x.example"
  - name: b
    on: ["*"]
  - name: c
    on: ["*"]
    webhook: "https://x.example"
    slack: "https://y.example"
  - name: d
    on: ["*"]
    exec: "cat"
    secret: s3cret
  - name: e
    on: ["*"]
    webhook: "ftp://x"
    remind: soon
  - name: f
    on: ["*"]
    webhook: "https://x/${var.path}"
    color: red
  - name: g
    on: ["*"]
    webhook: "https://x.example"
    timeout: 2h
)",
                     diags);
  EXPECT_TRUE(sinks.empty());
  std::string text = diags.ToString();
  EXPECT_NE(text.find("driftless.yaml:3:10: error: sink a: unknown event type `drift.detectd`"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("driftless.yaml:5:5: error: sink b has no destination"), std::string::npos)
      << text;
  EXPECT_NE(text.find("sink c has more than one destination"), std::string::npos) << text;
  EXPECT_NE(text.find("driftless.yaml:14:13: error: sink d: `secret` signs webhook requests only"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("driftless.yaml:17:15: error: sink e: `webhook` must be an http:// or "
                      "https:// URL"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("driftless.yaml:18:13: error: sink e: `remind` must be a duration"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("${var.path} is not available in sink f"), std::string::npos) << text;
  EXPECT_NE(text.find("driftless.yaml:22:12: error: unknown key `color`"), std::string::npos)
      << text;
  EXPECT_NE(text.find("driftless.yaml:26:14: error: sink g: `timeout` must be a duration from 1s "
                      "to 1h (one delivery's limit)"),
            std::string::npos)
      << text;
}

TEST(SinkConfigTest, ResolveUsesSecretsAndEnvironment) {
  Diagnostics diags;
  auto sinks = Parse(R"(notify:
  - name: audit
    on: ["*"]
    webhook: "https://audit.example/${project}/${env}"
    secret: "${secret.HMAC}"
)",
                     diags);
  ASSERT_EQ(sinks.size(), 1u) << diags.ToString();
  auto lookup = [](const std::string& name) -> std::optional<std::string> {
    if (name == "HMAC") return std::string("k3y");
    return std::nullopt;
  };
  Result<ResolvedSink> r = Resolve(sinks[0], "staging", "shop", lookup);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->url, "https://audit.example/shop/staging");
  EXPECT_EQ(r->secret, "k3y");
  Result<ResolvedSink> missing =
      Resolve(sinks[0], "staging", "shop", [](const std::string&) { return std::nullopt; });
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("HMAC"), std::string::npos) << missing.error().message;
}

TEST(EventTest, JsonHasTheStandardMembers) {
  Event e = MakeEvent("drift.detected", "prod", "file.file/motd",
                      {{"diff", Value::String("- a\n+ b\n")},
                       {"commit", Value::String("abc123")},
                       {"policy", Value::String("report")}});
  EXPECT_EQ(e.id.size(), 32u);
  Result<Value> v = value::ParseJson(e.ToJson());
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->Find("type")->as_string(), "drift.detected");
  EXPECT_EQ(v->Find("environment")->as_string(), "prod");
  EXPECT_EQ(v->Find("resource")->as_string(), "file.file/motd");
  EXPECT_EQ(v->Find("commit")->as_string(), "abc123");
  EXPECT_EQ(v->Find("diff")->as_string(), "- a\n+ b\n");
  EXPECT_EQ(v->Find("policy")->as_string(), "report");
  EXPECT_EQ(v->Find("actor"), nullptr);  // empty members are left out
  EXPECT_EQ(v->Find("time")->as_string().size(), 20u);
  EXPECT_EQ(e.Subject(), "drift:prod:file.file/motd");
  EXPECT_EQ(MakeEvent("apply.started", "prod", "").Subject(), "");
}

TEST(DeliverTest, SignatureIsHmacSha256OfTheBody) {
  // RFC 4231 test case 2.
  EXPECT_EQ(Signature("Jefe", "what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(DeliverTest, SlackPayloadKeepsTwentyDiffLines) {
  std::string diff;
  for (int i = 0; i < 30; ++i) diff += "+ line " + std::to_string(i) + "\n";
  Event e = MakeEvent("drift.detected", "prod", "file.file/motd", {{"diff", Value::String(diff)}});
  Result<Value> payload = value::ParseJson(SlackPayload(e.ToValue()));
  ASSERT_TRUE(payload.ok());
  const std::string& text = payload->Find("text")->as_string();
  EXPECT_EQ(text.rfind("*drift.detected* in environment *prod*: `file.file/motd`", 0), 0u) << text;
  EXPECT_NE(text.find("```\n+ line 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("+ line 19\n... 10 more lines\n```"), std::string::npos) << text;
  EXPECT_EQ(text.find("+ line 20"), std::string::npos) << text;
}

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "dl-notify-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string dir_;
};

using ExecTest = TempDir;

TEST_F(ExecTest, CommandGetsTheEventOnStandardInput) {
  ResolvedSink s;
  s.kind = SinkKind::kExec;
  s.shell_command = "cat > '" + dir_ + "/got'";
  ASSERT_TRUE(Deliver(s, "{\"type\":\"x\"}").ok());
  std::ifstream in(dir_ + "/got");
  std::stringstream got;
  got << in.rdbuf();
  EXPECT_EQ(got.str(), "{\"type\":\"x\"}");

  setenv("DRIFTLESS_SECRET_NOTIFY_TEST", "hidden", 1);
  setenv("NOTIFY_TEST_PLAIN", "seen", 1);
  s.shell_command =
      "echo \"$DRIFTLESS_SECRET_NOTIFY_TEST|$NOTIFY_TEST_PLAIN\" > '" + dir_ + "/env'";
  ASSERT_TRUE(Deliver(s, "{}").ok());
  std::ifstream env_in(dir_ + "/env");
  std::stringstream env_got;
  env_got << env_in.rdbuf();
  EXPECT_EQ(env_got.str(), "|seen\n") << "secrets are not passed to commands";

  s.shell_command = "echo nope >&2; exit 3";
  Status failed = Deliver(s, "{}");
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().message, "command exited with status 3: nope");

  s.shell_command = "";
  s.argv = {"sleep", "3600"};  // never done by itself within the test
  DeliveryLimits quick;
  quick.exec_timeout_ms = 200;
  Status slow = Deliver(s, "{}", quick);
  ASSERT_FALSE(slow.ok());
  EXPECT_NE(slow.error().message.find("timed out"), std::string::npos) << slow.error().message;

  // A sink's own timeout replaces the default.
  s.timeout_seconds = 1;
  Status own = Deliver(s, "{}");
  ASSERT_FALSE(own.ok());
  EXPECT_NE(own.error().message.find("timed out after 1s"), std::string::npos)
      << own.error().message;
}

// A command that exits without reading its input: the write fails with EPIPE, never a SIGPIPE
// that kills the caller, whoever that is (here the signal's default disposition is restored,
// as a process that has no Dispatcher would have it). A megabyte cannot fit in the pipe, so the
// write is still going on when the command exits.
TEST_F(ExecTest, ACommandThatDoesNotReadItsInputCannotKillTheCaller) {
  signal(SIGPIPE, SIG_DFL);
  ResolvedSink s;
  s.kind = SinkKind::kExec;
  s.shell_command = "exit 0";
  Status st = Deliver(s, std::string(1 << 20, 'x'));
  EXPECT_TRUE(st.ok()) << st.error().message;
  sigset_t pending;
  sigpending(&pending);
  EXPECT_EQ(sigismember(&pending, SIGPIPE), 0) << "no SIGPIPE left pending for later";
}

using DispatcherTest = TempDir;

TEST_F(DispatcherTest, FiltersRetriesWithBackoffAndNeverDrops) {
  auto store = state::SqliteStateStore::Open(dir_ + "/state.db");
  ASSERT_TRUE(store.ok()) << store.error().message;
  Diagnostics diags;
  auto sinks = Parse(R"(notify:
  - {name: all, on: ["*"], webhook: "http://127.0.0.1:1/"}
  - {name: prod, on: [apply.failed], environments: [prod], webhook: "http://127.0.0.1:1/"}
)",
                     diags);
  ASSERT_EQ(sinks.size(), 2u) << diags.ToString();
  bool up = false;
  std::vector<std::string> sent;
  Dispatcher d(
      **store, sinks, "shop", [](const std::string&) { return std::nullopt; },
      [&](const ResolvedSink& s, const std::string& json, const DeliveryLimits&) -> Status {
        if (!up) return MakeError("connection refused");
        sent.push_back(s.name + " " + json.substr(0, 0));
        return Status::Ok();
      });
  ASSERT_TRUE(d.Publish(MakeEvent("apply.succeeded", "prod", "")).ok());
  ASSERT_TRUE(d.Publish(MakeEvent("apply.failed", "staging", "")).ok());
  ASSERT_TRUE(d.Publish(MakeEvent("apply.failed", "prod", "")).ok());

  auto report = d.DeliverDue(600);  // a budget no round comes near
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->failed, 2);  // one per sink; the others wait for the next round
  auto status = (*store)->OutboxStatus();
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(status->size(), 2u);
  EXPECT_EQ((*status)[0].sink, "all");
  EXPECT_EQ((*status)[0].failing, 1);
  EXPECT_EQ((*status)[0].pending, 2);
  EXPECT_EQ((*status)[0].last_error, "connection refused");
  EXPECT_EQ((*status)[1].sink, "prod");
  EXPECT_EQ((*status)[1].failing + (*status)[1].pending, 1);

  // Once the clock has passed the back-off (1 s after the failures) all four are due, and all
  // are delivered.
  up = true;
  auto all_due = [&] {
    auto due = (*store)->DueDeliveries(NowUnix(), 100);
    return due.ok() && due->size() == 4u;
  };
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  while (!all_due() && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(all_due());
  report = d.DeliverDue(600);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->delivered, 4);
  status = (*store)->OutboxStatus();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ((*status)[0].delivered, 3);
  EXPECT_EQ((*status)[1].delivered, 1);
  EXPECT_EQ((*status)[0].failing + (*status)[0].pending, 0);
}

TEST_F(DispatcherTest, PrunesDeliveredEntriesAfterTheRetention) {
  auto store = state::SqliteStateStore::Open(dir_ + "/state.db");
  ASSERT_TRUE(store.ok()) << store.error().message;
  Diagnostics diags;
  auto sinks =
      Parse("notify:\n  - {name: all, on: [\"*\"], webhook: \"http://127.0.0.1:1/\"}\n", diags);
  ASSERT_EQ(sinks.size(), 1u) << diags.ToString();
  // Three deliveries of long ago (unix time 1000..1002) and one never delivered.
  auto old = [](int64_t at) {
    state::OutboxEntry e;
    e.sink = "all";
    e.environment = "prod";
    e.event_type = "apply.succeeded";
    e.event_id = "e" + std::to_string(at);
    e.event_json = "{}";
    e.created_at = at;
    e.next_attempt_at = at;
    return e;
  };
  ASSERT_TRUE((*store)->Enqueue({old(1000), old(1001), old(1002), old(1003)}).ok());
  for (int64_t id : {1, 2, 3}) ASSERT_TRUE((*store)->MarkDelivered(id, 1000 + id).ok());
  ASSERT_TRUE((*store)->MarkFailed(4, "refused", NowUnix() + 3600).ok());
  Dispatcher d(
      **store, sinks, "shop", [](const std::string&) { return std::nullopt; },
      [](const ResolvedSink&, const std::string&, const DeliveryLimits&) { return Status::Ok(); });
  d.set_retention(7 * 24 * 3600);
  ASSERT_TRUE(d.DeliverDue(5).ok());
  auto status = (*store)->OutboxStatus();
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(status->size(), 1u);
  EXPECT_EQ((*status)[0].delivered, 1);  // the last delivery stays, to tell when it was
  EXPECT_EQ((*status)[0].last_delivered_at, 1003);
  EXPECT_EQ((*status)[0].failing, 1);  // never removed before it is delivered
  // At most once an hour: what is delivered meanwhile stays until then.
  ASSERT_TRUE((*store)->Enqueue({old(1004)}).ok());
  ASSERT_TRUE((*store)->MarkDelivered(5, 1005).ok());
  ASSERT_TRUE(d.DeliverDue(5).ok());
  EXPECT_EQ((*(*store)->OutboxStatus())[0].delivered, 2);
}

TEST_F(DispatcherTest, EveryPublishedEventGoesToTheEventLogAsTheSinksReceiveIt) {
  auto store = state::SqliteStateStore::Open(dir_ + "/state.db");
  ASSERT_TRUE(store.ok()) << store.error().message;
  Diagnostics diags;
  auto sinks = Parse(R"(notify:
  - {name: prod, on: [apply.failed], environments: [prod], webhook: "http://127.0.0.1:1/"}
)",
                     diags);
  ASSERT_EQ(sinks.size(), 1u) << diags.ToString();
  std::vector<std::string> sent;
  Dispatcher d(
      **store, sinks, "shop", [](const std::string&) { return std::nullopt; },
      [&](const ResolvedSink&, const std::string& json, const DeliveryLimits&) -> Status {
        sent.push_back(json);
        return Status::Ok();
      });
  Event wanted = MakeEvent("apply.failed", "prod", "", {{"error", value::Value::String("x")}});
  Event unwanted = MakeEvent("drift.detected", "staging", "file.file/motd");
  ASSERT_TRUE(d.Publish(wanted).ok());
  ASSERT_TRUE(d.Publish(unwanted).ok());
  auto report = d.DeliverDue(5);
  ASSERT_TRUE(report.ok());
  ASSERT_EQ(sent, std::vector<std::string>{wanted.ToJson()});

  // Both are in the log, in order, with the JSON the sink received.
  auto log = (*store)->EventsAfter(0, {}, 0);
  ASSERT_TRUE(log.ok()) << log.error().message;
  ASSERT_EQ(log->size(), 2u);
  EXPECT_EQ((*log)[0].type, "apply.failed");
  EXPECT_EQ((*log)[0].environment, "prod");
  EXPECT_EQ((*log)[0].payload_json, wanted.ToJson());
  EXPECT_EQ((*log)[0].time, wanted.time);
  EXPECT_EQ((*log)[1].payload_json, unwanted.ToJson());

  // A dispatcher without sinks records events and delivers nothing (nor touches the outbox).
  Dispatcher quiet(**store, {}, "shop", [](const std::string&) { return std::nullopt; });
  ASSERT_TRUE((*store)
                  ->Enqueue({state::OutboxEntry{0, "gone", "prod", "apply.failed", "e9", "", "{}"}})
                  .ok());
  ASSERT_TRUE(quiet.Publish(MakeEvent("env.created", "qa", "")).ok());
  auto none = quiet.DeliverDue(5);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->delivered + none->failed, 0);
  auto status = (*store)->OutboxStatus();
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(status->size(), 2u);
  EXPECT_EQ((*status)[0].sink, "gone");
  EXPECT_EQ((*status)[0].failing, 0);
  EXPECT_EQ((*status)[0].pending, 1);
  log = (*store)->EventsAfter(0, {"qa", {}}, 0);
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(log->size(), 1u);
}

TEST_F(DispatcherTest, PublishPrunesEventsPastTheRetention) {
  auto store = state::SqliteStateStore::Open(dir_ + "/state.db");
  ASSERT_TRUE(store.ok()) << store.error().message;
  const int64_t now = NowUnix();
  ASSERT_TRUE((*store)->AppendEvent({0, "apply.started", "prod", "{}", now - 8 * 86400}, {}).ok());
  ASSERT_TRUE((*store)->AppendEvent({0, "apply.started", "prod", "{}", now - 6 * 86400}, {}).ok());
  Dispatcher d(**store, {}, "shop", [](const std::string&) { return std::nullopt; });
  ASSERT_TRUE(d.Publish(MakeEvent("apply.succeeded", "prod", "")).ok());
  auto log = (*store)->EventsAfter(0, {}, 0);
  ASSERT_TRUE(log.ok());
  ASSERT_EQ(log->size(), 2u);  // the one older than 7 days is gone
  EXPECT_EQ((*log)[0].time, now - 6 * 86400);
  EXPECT_TRUE(*(*store)->EventIdPastRetention(0));
}

TEST(DispatcherBackoffTest, DoublesUpToAnHour) {
  EXPECT_EQ(Dispatcher::Backoff(1), 1);
  EXPECT_EQ(Dispatcher::Backoff(2), 2);
  EXPECT_EQ(Dispatcher::Backoff(3), 4);
  EXPECT_EQ(Dispatcher::Backoff(12), 2048);
  EXPECT_EQ(Dispatcher::Backoff(13), 3600);
  EXPECT_EQ(Dispatcher::Backoff(1000), 3600);
}

TEST_F(DispatcherTest, RemindsOfOpenDriftAfterTheInterval) {
  auto store = state::SqliteStateStore::Open(dir_ + "/state.db");
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->GetOrCreateEnvironment("prod").ok());
  Diagnostics diags;
  auto sinks = Parse(R"(notify:
  - {name: ops, on: [drift.detected], webhook: "http://x/", remind: 1h}
  - {name: quiet, on: [drift.detected], webhook: "http://x/"}
)",
                     diags);
  ASSERT_EQ(sinks.size(), 2u) << diags.ToString();
  Dispatcher d(
      **store, sinks, "shop", [](const std::string&) { return std::nullopt; },
      [](const ResolvedSink&, const std::string&, const DeliveryLimits&) { return Status::Ok(); });
  const int64_t t0 = 1'000'000;
  ASSERT_TRUE((*store)->ObserveDrift("prod", {{"file.file/a", "- x\n+ y\n", ""}}, {}, "", t0).ok());
  Result<int64_t> next = d.Remind("prod", t0 + 60);  // too early
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(*next, t0 + 3600) << "due an hour after the onset";
  auto due = (*store)->DueDeliveries(t0 + 10000, 100);
  ASSERT_TRUE(due.ok());
  EXPECT_TRUE(due->empty());
  next = d.Remind("prod", t0 + 3600);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(*next, t0 + 7200) << "reminded now: due an hour later";
  due = (*store)->DueDeliveries(t0 + 10000, 100);
  ASSERT_TRUE(due.ok());
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ((*due)[0].sink, "ops");
  EXPECT_EQ((*due)[0].event_type, "drift.reminder");
  EXPECT_NE((*due)[0].event_json.find("\"open_seconds\":3600"), std::string::npos);
  next = d.Remind("prod", t0 + 3700);  // reminded 100 s ago
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(*next, t0 + 7200);
  due = (*store)->DueDeliveries(t0 + 10000, 100);
  ASSERT_TRUE(due.ok());
  EXPECT_EQ(due->size(), 1u);
  // Resolved: nothing is due any more.
  ASSERT_TRUE((*store)->ObserveDrift("prod", {}, {"file.file/a"}, "undone", t0 + 3800).ok());
  next = d.Remind("prod", t0 + 3800);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(*next, 0);
}

}  // namespace
}  // namespace driftless::notify
