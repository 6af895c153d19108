// The event log fed by the real binary on a PostgreSQL state: every event `apply` and `destroy`
// publish is in driftless.events, with exactly the JSON a webhook sink receives, in the order
// they happened, with ids that only grow; and a project without any sink records them too.
//
// The file's name holds "postgres", so its tests get the test PostgreSQL server.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "e2e/harness.h"
#include "notify/testing/http_receiver.h"
#include "support/postgres.h"

namespace driftless::test {
namespace {

using notify::testing::Receiver;
using notify::testing::Request;

const char* kFiles =
    "kind: file.file\nname: motd\ntarget: host\nspec: {path: motd.txt, content: hello}\n";

TEST(e2e_event_log, EveryPublishedEventIsLoggedAsTheSinkReceivedIt) {
  Receiver rx;
  ASSERT_TRUE(rx.Start());
  PgSandbox s;
  ASSERT_FALSE(s.uri().empty());
  s.WriteProject("notify:\n  - name: hook\n    on: [\"*\"]\n    webhook: \"" + rx.Url("/h") +
                 "\"\n");
  s.WriteRepoFile("files.yaml", kFiles);
  RunResult a = s.Pg({"apply", "--auto-approve"});
  ASSERT_EQ(a.exit_code, 0) << Summary(a);
  RunResult d = s.Pg({"destroy", "default", "--auto-approve"});
  ASSERT_EQ(d.exit_code, 0) << Summary(d);
  ASSERT_TRUE(rx.WaitFor("env.destroyed"));

  EXPECT_EQ(QueryValue(s.dsn(), "SELECT string_agg(type, ',' ORDER BY id) FROM driftless.events"),
            "apply.started,apply.succeeded,apply.started,apply.succeeded,env.destroyed");
  EXPECT_EQ(QueryValue(s.dsn(), "SELECT count(DISTINCT env) FROM driftless.events"), "1");
  // The sink got each event's JSON byte for byte as the log holds it.
  for (const Request& r : rx.Requests()) {
    EXPECT_EQ(QueryValue(s.dsn(), "SELECT count(*) FROM driftless.events WHERE payload_json = $b$" +
                                      r.body + "$b$"),
              "1")
        << r.body;
  }
  EXPECT_EQ(rx.Requests().size(), 5u);
}

TEST(e2e_event_log, AProjectWithoutSinksRecordsItsEventsToo) {
  PgSandbox s;
  ASSERT_FALSE(s.uri().empty());
  s.WriteProject();
  s.WriteRepoFile("files.yaml", kFiles);
  RunResult a = s.Pg({"apply", "--auto-approve"});
  ASSERT_EQ(a.exit_code, 0) << Summary(a);
  EXPECT_EQ(a.err, "");
  EXPECT_EQ(QueryValue(s.dsn(), "SELECT string_agg(type, ',' ORDER BY id) FROM driftless.events"),
            "apply.started,apply.succeeded");
  EXPECT_EQ(QueryValue(s.dsn(), "SELECT count(*) FROM driftless.outbox"), "0");
  RunResult status = s.Pg({"notify", "status"});
  EXPECT_EQ(status.exit_code, 0) << Summary(status);
}

}  // namespace
}  // namespace driftless::test
