// Notifications end to end: a real HTTP receiver on 127.0.0.1 (a blocking socket server in a
// thread) gets signed webhook events from `apply`; a receiver that is down gets the event once it
// is back, across restarts of `watch`; exec sinks get the JSON on standard input; Slack gets its
// payload; `notify status` shows a failing sink with its error.

#include <arpa/inet.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "base/hash.h"
#include "e2e/harness.h"
#include "notify/testing/http_receiver.h"

namespace driftless::test {
namespace {

using notify::testing::Receiver;
using notify::testing::Request;

const char* kFiles =
    "kind: file.file\nname: motd\ntarget: host\nspec: {path: motd.txt, content: hello}\n";

class NotifyTest : public ::testing::Test {
 protected:
  // The standard output of the process started last by Sandbox::Start (files .bgN.out).
  // What the process started last wrote on standard output (".out") or standard error (".err").
  std::string LastOutput(const std::string& suffix = ".out") {
    int best = -1;
    if (DIR* d = opendir(box_.dir().c_str())) {
      while (dirent* e = readdir(d)) {
        int n = -1;
        if (std::sscanf(e->d_name, ".bg%d.out", &n) == 1 && n > best) best = n;
      }
      closedir(d);
    }
    return best < 0 ? "" : ReadFile(box_.dir() + "/.bg" + std::to_string(best) + suffix);
  }
  // Waits until the watch started last says it watches (its first scan is done: a change made
  // from now on is seen by its watchers).
  ::testing::AssertionResult WatchStarted(int pid) {
    if (PollUntil([&] {
          return LastOutput().find("\"type\":\"watch.started\"") != std::string::npos ||
                 Exited(pid);
        }) &&
        !Exited(pid)) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "the watch never started:\n" << LastOutput();
  }
  // The one sink of `notify status --json`.
  Json OnlySink() {
    Json status = Status();
    const Json* sinks = status.Find("sinks");
    if (sinks == nullptr || sinks->items.size() != 1) {
      ADD_FAILURE() << "not one sink in notify status";
      return Json();
    }
    return sinks->items[0];
  }
  Json Status() {
    RunResult s = box_.Run({"notify", "status", "--json"});
    EXPECT_EQ(s.exit_code, 0) << s.err;
    Json j;
    EXPECT_TRUE(ReadJson(s.out, &j)) << s.out;
    return j;
  }
  Sandbox box_;
};

TEST_F(NotifyTest, ApplySendsSignedWebhookEvents) {
  Receiver rx;
  ASSERT_TRUE(rx.Start());
  box_.WriteProject("notify:\n  - name: audit\n    on: [\"*\"]\n    webhook: \"" +
                    rx.Url("/hooks/${env}") + "\"\n    secret: \"${secret.AUDIT_HMAC}\"\n");
  box_.WriteRepoFile("files.yaml", kFiles);
  RunResult a = box_.Run({"apply", "--auto-approve"}, {"DRIFTLESS_SECRET_AUDIT_HMAC=k3y-s3cret"});
  ASSERT_EQ(a.exit_code, 0) << a.out << a.err;

  Request r;
  ASSERT_TRUE(rx.WaitFor("apply.succeeded", &r));
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.path, "/hooks/default");
  EXPECT_EQ(r.Header("content-type"), "application/json");
  EXPECT_EQ(r.Header("x-driftless-signature"), "sha256=" + HmacSha256Hex("k3y-s3cret", r.body));
  EXPECT_EQ(r.body.find("k3y-s3cret"), std::string::npos);
  Json event;
  ASSERT_TRUE(ReadJson(r.body, &event)) << r.body;
  EXPECT_EQ(event.Str("type"), "apply.succeeded");
  EXPECT_EQ(event.Str("environment"), "default");
  EXPECT_EQ(event.Str("id"), r.Header("x-driftless-delivery"));
  EXPECT_EQ(event.Str("summary"), "1 created");
  EXPECT_FALSE(event.Str("actor").empty());
  EXPECT_FALSE(event.Str("time").empty());
  EXPECT_TRUE(rx.WaitFor("apply.started"));

  Json status = Status();
  const Json* sinks = status.Find("sinks");
  ASSERT_TRUE(sinks != nullptr && sinks->items.size() == 1) << "status";
  EXPECT_EQ(sinks->items[0].Str("sink"), "audit");
  EXPECT_EQ(sinks->items[0].Str("kind"), "webhook");
  EXPECT_EQ(sinks->items[0].Int("delivered"), 2);
  EXPECT_EQ(sinks->items[0].Int("failing"), 0);
  // Nothing resolved is stored: neither the secret nor the resolved URL.
  std::string db = StateBytes(box_);
  EXPECT_EQ(db.find("k3y-s3cret"), std::string::npos);
  EXPECT_EQ(db.find("/hooks/default"), std::string::npos);

  // Destroy: apply.* and env.destroyed.
  RunResult d = box_.Run({"destroy", "default", "--auto-approve"},
                         {"DRIFTLESS_SECRET_AUDIT_HMAC=k3y-s3cret"});
  ASSERT_EQ(d.exit_code, 0) << d.out << d.err;
  ASSERT_TRUE(rx.WaitFor("env.destroyed", &r));
  EXPECT_EQ(r.Header("x-driftless-signature"), "sha256=" + HmacSha256Hex("k3y-s3cret", r.body));
}

TEST_F(NotifyTest, ADownReceiverGetsTheEventsOnceItIsBackAcrossWatchRestarts) {
  Receiver rx;
  ASSERT_TRUE(rx.Start());
  const int port = rx.port();
  const std::string url = rx.Url("/in");
  rx.Stop();  // connection refused from now on
  box_.WriteProject(
      "notify:\n  - name: audit\n    on: [apply.succeeded, drift.detected]\n"
      "    webhook: \"" +
      url + "\"\n");
  box_.WriteRepoFile("files.yaml", kFiles);
  RunResult a = box_.Run({"apply", "--auto-approve"});
  ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  EXPECT_NE(a.err.find("could not be delivered"), std::string::npos) << a.err;

  // notify status: failing, with the error.
  Json status = Status();
  const Json* sinks = status.Find("sinks");
  ASSERT_TRUE(sinks != nullptr && sinks->items.size() == 1);
  EXPECT_EQ(sinks->items[0].Int("failing"), 1);
  EXPECT_EQ(sinks->items[0].Int("delivered"), 0);
  EXPECT_NE(sinks->items[0].Str("last_error").find("connect"), std::string::npos)
      << sinks->items[0].Str("last_error");
  EXPECT_FALSE(sinks->items[0].Str("next_attempt").empty());
  RunResult text = box_.Run({"notify", "status"});
  EXPECT_NE(text.out.find("audit"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("FAILING"), std::string::npos) << text.out;

  // A watch while the receiver is still down: retried (the next attempt moves on, by the
  // back-off), still failing, kept.
  const std::string first_next = sinks->items[0].Str("next_attempt");
  int w1 = box_.Start({"watch", "--interval", "1h"});
  ASSERT_TRUE(WatchStarted(w1));
  EXPECT_TRUE(PollUntil([&] {
    Json sink = OnlySink();
    return sink.Str("next_attempt") != first_next && sink.Int("failing") == 1;
  })) << "the watch never retried the delivery: "
      << box_.Run({"notify", "status"}).out << "\nthe watch's output:\n"
      << LastOutput() << "\nits errors:\n"
      << LastOutput(".err");
  kill(w1, SIGTERM);
  EXPECT_EQ(Wait(w1), 0) << LastOutput();
  EXPECT_TRUE(rx.Requests().empty());
  EXPECT_EQ(OnlySink().Int("delivered"), 0);

  // The receiver comes back; a new watch delivers what is pending, and new drift.
  ASSERT_TRUE(rx.Start(port));
  int w2 = box_.Start({"watch", "--interval", "1h"});
  EXPECT_TRUE(rx.WaitFor("apply.succeeded")) << LastOutput();
  ASSERT_TRUE(WatchStarted(w2));
  std::FILE* f = std::fopen((box_.root() + "/motd.txt").c_str(), "w");
  ASSERT_TRUE(f != nullptr);
  std::fputs("edited by hand", f);
  std::fclose(f);
  Request r;
  EXPECT_TRUE(rx.WaitFor("drift.detected", &r)) << LastOutput();
  Json event;
  ASSERT_TRUE(ReadJson(r.body, &event)) << r.body;
  EXPECT_EQ(event.Str("resource"), "file.file/motd");
  EXPECT_NE(event.Str("diff").find("edited by hand"), std::string::npos) << r.body;
  kill(w2, SIGTERM);
  EXPECT_EQ(Wait(w2), 0);

  status = Status();
  sinks = status.Find("sinks");
  ASSERT_TRUE(sinks != nullptr && sinks->items.size() == 1);
  EXPECT_EQ(sinks->items[0].Int("delivered"), 2) << box_.Run({"notify", "status"}).out;
  EXPECT_EQ(sinks->items[0].Int("failing"), 0);
  EXPECT_EQ(sinks->items[0].Int("pending"), 0);
}

TEST_F(NotifyTest, ExecGetsTheJsonOnStdinAndSlackItsPayload) {
  Receiver rx;
  ASSERT_TRUE(rx.Start());
  const std::string got = box_.dir() + "/exec.json";
  box_.WriteProject("notify:\n  - name: script\n    on: [apply.succeeded]\n    exec: \"cat > " +
                    got + "\"\n  - name: chat\n    on: [apply.succeeded]\n    slack: \"" +
                    rx.Url("/services/${secret.SLACK_PATH}") + "\"\n");
  box_.WriteRepoFile("files.yaml", kFiles);
  RunResult none = box_.Run({"notify", "status"});
  EXPECT_NE(none.out.find("chat             slack"), std::string::npos) << none.out;
  RunResult a = box_.Run({"apply", "--auto-approve"}, {"DRIFTLESS_SECRET_SLACK_PATH=T0/B0/xyz"});
  ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  Json event;
  ASSERT_TRUE(ReadJson(ReadFile(got), &event)) << ReadFile(got);
  EXPECT_EQ(event.Str("type"), "apply.succeeded");
  EXPECT_EQ(event.Str("environment"), "default");

  Request r;
  ASSERT_TRUE(rx.WaitFor("apply.succeeded", &r));
  EXPECT_EQ(r.path, "/services/T0/B0/xyz");
  Json payload;
  ASSERT_TRUE(ReadJson(r.body, &payload)) << r.body;
  EXPECT_EQ(payload.Str("text").rfind("*apply.succeeded* in environment *default*", 0), 0u)
      << r.body;
  EXPECT_NE(payload.Str("text").find("summary: 1 created"), std::string::npos) << r.body;
  // The resolved URL is never stored.
  std::string db = StateBytes(box_);
  EXPECT_EQ(db.find("T0/B0/xyz"), std::string::npos);
}

TEST_F(NotifyTest, BadSinksAreReportedWithFileLineAndColumn) {
  box_.WriteProject("notify:\n  - name: x\n    on: [apply.finished]\n    webhook: \"http://h\"\n");
  box_.WriteRepoFile("files.yaml", kFiles);
  RunResult v = box_.Run({"validate"});
  EXPECT_EQ(v.exit_code, 1);
  EXPECT_NE(v.err.find("driftless.yaml:6:10: error: sink x: unknown event type `apply.finished`"),
            std::string::npos)
      << v.err;
  RunResult a = box_.Run({"apply", "--auto-approve"});
  EXPECT_EQ(a.exit_code, 1);
  EXPECT_NE(a.err.find("unknown event type"), std::string::npos) << a.err;
  EXPECT_FALSE(Exists(box_.root() + "/motd.txt"));
}

TEST_F(NotifyTest, OpenDriftIsRemindedAfterTheInterval) {
  Receiver rx;
  ASSERT_TRUE(rx.Start());
  box_.WriteProject(
      "notify:\n  - name: ops\n    on: [drift.detected]\n    remind: 2s\n"
      "    webhook: \"" +
      rx.Url("/ops") + "\"\n");
  box_.WriteRepoFile("files.yaml", kFiles);
  RunResult a = box_.Run({"apply", "--auto-approve"});
  ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  int w = box_.Start({"watch", "--interval", "1h"});
  ASSERT_TRUE(WatchStarted(w));
  std::FILE* f = std::fopen((box_.root() + "/motd.txt").c_str(), "w");
  ASSERT_TRUE(f != nullptr);
  std::fputs("edited by hand", f);
  std::fclose(f);
  ASSERT_TRUE(rx.WaitFor("drift.detected")) << LastOutput();
  Request r;
  ASSERT_TRUE(rx.WaitFor("drift.reminder", &r)) << LastOutput();
  Json event;
  ASSERT_TRUE(ReadJson(r.body, &event)) << r.body;
  EXPECT_EQ(event.Str("resource"), "file.file/motd");
  EXPECT_GE(event.Int("open_seconds"), 2);
  kill(w, SIGTERM);
  EXPECT_EQ(Wait(w), 0);
  size_t detected = 0;
  for (const Request& q : rx.Requests())
    detected += q.Header("x-driftless-event") == "drift.detected";
  EXPECT_EQ(detected, 1u) << "only new drift is detected; the rest are reminders";
}

TEST_F(NotifyTest, AFailingCommandIsReportedWithoutItsSecrets) {
  box_.WriteProject(
      "notify:\n  - name: script\n    on: [\"*\"]\n"
      "    exec: \"echo token ${secret.TOKEN} rejected >&2; exit 4\"\n");
  box_.WriteRepoFile("files.yaml", kFiles);
  RunResult a = box_.Run({"apply", "--auto-approve"}, {"DRIFTLESS_SECRET_TOKEN=t0ps3cr3t"});
  ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  Json status = Status();
  const Json* sinks = status.Find("sinks");
  ASSERT_TRUE(sinks != nullptr && sinks->items.size() == 1);
  EXPECT_EQ(sinks->items[0].Int("failing"), 1);
  EXPECT_EQ(sinks->items[0].Str("last_error"),
            "command exited with status 4: token (sensitive) rejected");
  std::string db = StateBytes(box_);
  EXPECT_EQ(db.find("t0ps3cr3t"), std::string::npos);
}

TEST_F(NotifyTest, AHangingReceiverNeverDelaysDriftDetection) {
  // Listens but never accepts: connections succeed (the backlog) and requests hang, for as long
  // as the sink's timeout (an hour) allows: longer than the test, so that the delivery is still
  // in flight when the next drift is detected, however slow the machine.
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(fd, 16), 0);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  box_.WriteProject(
      "notify:\n  - name: slow\n    on: [drift.detected]\n    timeout: 1h\n    webhook: "
      "\"http://127.0.0.1:" +
      std::to_string(ntohs(addr.sin_port)) + "/\"\n");
  box_.WriteRepoFile("files.yaml",
                     std::string(kFiles) +
                         "---\nkind: file.file\nname: b\ntarget: host\nspec: {path: b.txt, "
                         "content: b}\n");
  RunResult a = box_.Run({"apply", "--auto-approve"});
  ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  int w = box_.Start({"watch", "--interval", "1h"});
  ASSERT_TRUE(WatchStarted(w));
  std::FILE* f = std::fopen((box_.root() + "/motd.txt").c_str(), "w");
  ASSERT_TRUE(f != nullptr);
  std::fputs("one", f);
  std::fclose(f);
  ASSERT_TRUE(PollUntil([&] {
    return LastOutput().find("\"resource\":\"file.file/motd\"") != std::string::npos;
  })) << LastOutput();
  // Its delivery has connected (the listening socket has a connection waiting to be accepted):
  // from now on it hangs.
  pollfd pending{fd, POLLIN, 0};
  ASSERT_TRUE(PollUntil([&] { return poll(&pending, 1, 0) == 1; }))
      << "the delivery never connected: " << LastOutput();
  f = std::fopen((box_.root() + "/b.txt").c_str(), "w");
  ASSERT_TRUE(f != nullptr);
  std::fputs("two", f);
  std::fclose(f);
  EXPECT_TRUE(PollUntil([&] {
    return LastOutput().find("\"resource\":\"file.file/b\"") != std::string::npos;
  })) << "drift detection waited for a notification: "
      << LastOutput();
  // The first delivery is still in flight: it neither got through nor failed.
  Json sink = OnlySink();
  EXPECT_EQ(sink.Int("delivered"), 0);
  EXPECT_EQ(sink.Int("failing"), 0) << "the hanging delivery ended before b was detected";
  kill(w, SIGTERM);
  EXPECT_EQ(Wait(w), 0) << "a delivery in flight is abandoned when the watch stops";
  close(fd);
}

}  // namespace
}  // namespace driftless::test
