#include "server/http/router.h"

#include <gtest/gtest.h>

#include "server/http/server.h"

namespace driftless::server::http {
namespace {

Response Ok(const Request&) { return Response::Text(200, "ok"); }

Router Routes() {
  Router router(16);
  EXPECT_TRUE(router.AddSync("GET", "/api/v1/runs/{id}", Ok).ok());
  EXPECT_TRUE(router.AddSync("GET", "/api/v1/runs/latest", Ok).ok());
  EXPECT_TRUE(router.AddSync("POST", "/api/v1/runs/{id}/cancel", Ok).ok());
  EXPECT_TRUE(router.AddSync("POST", "/api/v1/environments/{env}/runs", Ok).ok());
  EXPECT_TRUE(router.AddSync("GET", "/api/v1/environments/{env}/runs", Ok).ok());
  EXPECT_TRUE(router.AddSync("GET", "/", Ok).ok());
  return router;
}

TEST(RouterTest, MatchesPatternsAndDecodesParameters) {
  Router router = Routes();
  RouteMatch m = router.Match("GET", "/api/v1/runs/42");
  ASSERT_EQ(m.kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(m.route->pattern, "/api/v1/runs/{id}");
  ASSERT_EQ(m.params.size(), 1u);
  EXPECT_EQ(m.params[0], (std::pair<std::string, std::string>("id", "42")));

  m = router.Match("GET", "/api/v1/environments/feature%2Dx/runs");
  ASSERT_EQ(m.kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(m.params[0].second, "feature-x");

  m = router.Match("GET", "/");
  EXPECT_EQ(m.kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(m.route->pattern, "/");
}

TEST(RouterTest, GetFallbackTakesOnlyUnmatchedGets) {
  Router router = Routes();
  EXPECT_EQ(router.Match("GET", "/environments/prod").kind, RouteMatch::Kind::kNotFound);
  router.SetGetFallback([](const Request&, Responder) {});
  RouteMatch m = router.Match("GET", "/environments/prod");
  ASSERT_EQ(m.kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(m.route->pattern, "/*");
  EXPECT_TRUE(m.params.empty());
  // A route still wins; a path with routes of other methods stays a 405; other methods a 404.
  EXPECT_EQ(router.Match("GET", "/api/v1/runs/42").route->pattern, "/api/v1/runs/{id}");
  EXPECT_EQ(router.Match("GET", "/api/v1/runs/7/cancel").kind, RouteMatch::Kind::kMethodNotAllowed);
  EXPECT_EQ(router.Match("POST", "/environments/prod").kind, RouteMatch::Kind::kNotFound);
}

TEST(RouterTest, LiteralSegmentsWinOverParameters) {
  Router router = Routes();
  RouteMatch m = router.Match("GET", "/api/v1/runs/latest");
  ASSERT_EQ(m.kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(m.route->pattern, "/api/v1/runs/latest");
  EXPECT_TRUE(m.params.empty());
}

TEST(RouterTest, UnknownPathAndWrongMethod) {
  Router router = Routes();
  EXPECT_EQ(router.Match("GET", "/api/v1/nothing").kind, RouteMatch::Kind::kNotFound);
  EXPECT_EQ(router.Match("GET", "/api/v1/runs/").kind, RouteMatch::Kind::kNotFound);
  EXPECT_EQ(router.Match("GET", "/api/v1/runs/1/2").kind, RouteMatch::Kind::kNotFound);
  RouteMatch m = router.Match("DELETE", "/api/v1/environments/prod/runs");
  ASSERT_EQ(m.kind, RouteMatch::Kind::kMethodNotAllowed);
  EXPECT_EQ(m.allow, "GET, POST");
  m = router.Match("GET", "/api/v1/runs/7/cancel");
  ASSERT_EQ(m.kind, RouteMatch::Kind::kMethodNotAllowed);
  EXPECT_EQ(m.allow, "POST");
}

TEST(RouterTest, RefusesBadParametersNamingTheRoute) {
  Router router = Routes();
  for (const char* path :
       {"/api/v1/runs/..", "/api/v1/runs/%2E%2E", "/api/v1/runs/a..b", "/api/v1/runs/%2e",
        "/api/v1/runs/a%00b", "/api/v1/runs/a%22b", "/api/v1/runs/it's", "/api/v1/runs/a%2Fb",
        "/api/v1/runs/a%5Cb", "/api/v1/runs/a%0Ab", "/api/v1/runs/12345678901234567"}) {
    RouteMatch m = router.Match("GET", path);
    ASSERT_EQ(m.kind, RouteMatch::Kind::kBadRequest) << path;
    EXPECT_NE(m.message.find("route GET /api/v1/runs/{id}: path parameter id"), std::string::npos)
        << m.message;
  }
  EXPECT_EQ(router.Match("GET", "/api/v1/runs/1234567890123456").kind,
            RouteMatch::Kind::kFound);  // 16 bytes: the cap
  RouteMatch m = router.Match("GET", "/api/v1/runs/%zz");
  EXPECT_EQ(m.kind, RouteMatch::Kind::kBadRequest);
  EXPECT_EQ(m.message, "malformed percent-encoding in the path");
  EXPECT_EQ(router.Match("GET", "api").kind, RouteMatch::Kind::kBadRequest);
  EXPECT_EQ(router.Match("GET", "").kind, RouteMatch::Kind::kBadRequest);
}

TEST(RouterTest, RefusesMalformedAndConflictingPatterns) {
  Router router;
  EXPECT_TRUE(router.AddSync("GET", "/a/{id}", Ok).ok());
  Status s = router.AddSync("GET", "/a/{name}", Ok);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, "route GET /a/{name}: conflicts with /a/{id}");
  EXPECT_TRUE(router.AddSync("POST", "/a/{name}", Ok).ok());
  EXPECT_FALSE(router.AddSync("GET", "a", Ok).ok());
  EXPECT_FALSE(router.AddSync("GET", "/a//b", Ok).ok());
  EXPECT_FALSE(router.AddSync("GET", "/a/{Bad}", Ok).ok());
  EXPECT_FALSE(router.AddSync("GET", "/a/{x}/{x}", Ok).ok());
  EXPECT_FALSE(router.AddSync("get", "/b", Ok).ok());
  EXPECT_FALSE(router.AddSync("GET", "/a b", Ok).ok());
}

TEST(RouterTest, ParamProblem) {
  EXPECT_EQ(ParamProblem("prod", 8), "");
  EXPECT_EQ(ParamProblem("feature-1.2_x", 64), "");
  EXPECT_EQ(ParamProblem("", 8), "is empty");
  EXPECT_EQ(ParamProblem("123456789", 8), "is longer than 8 bytes");
  EXPECT_EQ(ParamProblem(std::string("a\0b", 3), 8), "must not contain NUL");
  EXPECT_EQ(ParamProblem("a\"b", 8), "must not contain quotes");
  EXPECT_EQ(ParamProblem("../x", 8), "must not contain \"..\"");
}

TEST(MessageTest, EnvelopeFillsOrWraps) {
  Response r = Response::Error(404, "not_found", "no \"such\" thing");
  EnsureEnvelope(r, "req-1");
  EXPECT_EQ(r.body,
            R"({"error":{"code":"not_found","message":"no \"such\" thing","request_id":"req-1"}})");
  Response text = Response::Text(409, "already running\x01");
  EnsureEnvelope(text, "r2");
  EXPECT_EQ(text.content_type, "application/json");
  EXPECT_EQ(text.body,
            R"({"error":{"code":"conflict","message":"already running?","request_id":"r2"}})");
  Response kept = Response::Error(400, "x", "y", "given");
  EnsureEnvelope(kept, "other");
  EXPECT_NE(kept.body.find("\"given\""), std::string::npos);
}

TEST(MessageTest, QueryParametersAndRequestIds) {
  Request r;
  r.query = "env=feature%2F1&type=drift.detected&q=a+b&flag&bad=%zz";
  EXPECT_EQ(r.QueryParam("env"), "feature/1");
  EXPECT_EQ(r.QueryParam("q"), "a b");
  EXPECT_EQ(r.QueryParam("flag"), "");
  EXPECT_EQ(r.QueryParam("bad"), std::nullopt);
  EXPECT_EQ(r.QueryParam("none"), std::nullopt);
  EXPECT_TRUE(AcceptableRequestId("abc-123_x.y:z"));
  EXPECT_FALSE(AcceptableRequestId(""));
  EXPECT_FALSE(AcceptableRequestId("a b"));
  EXPECT_FALSE(AcceptableRequestId(std::string(129, 'a')));
  std::string id = NewRequestId();
  EXPECT_EQ(id.size(), 32u);
  EXPECT_NE(id, NewRequestId());
}

TEST(MessageTest, JsonBodyErrorsSayWhere) {
  Request r;
  r.body = R"({"action": "plan",})";
  auto v = r.JsonBody();
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.error().message.find("not valid JSON"), std::string::npos);
  EXPECT_NE(v.error().message.find("offset"), std::string::npos);
  r.body = R"({"action": "plan"})";
  ASSERT_TRUE(r.JsonBody().ok());
  EXPECT_EQ(r.JsonBody()->Find("action")->as_string(), "plan");
}

TEST(MessageTest, AccessLogLineIsOneJsonObject) {
  AccessRecord record{"GET", "/api/v1/runs/{id}", 200, 1.5, "abc", "ci", 12};
  std::string line = AccessLogLine(record);
  EXPECT_EQ(line, R"({"bytes_out":12,"duration_ms":1.500,"method":"GET","principal":"ci",)"
                  R"("request_id":"abc","route":"/api/v1/runs/{id}","status":200})");
  EXPECT_TRUE(value::ParseJson(line).ok());
}

TEST(MessageTest, SseEventFormat) {
  EXPECT_EQ(FormatSseEvent({"7", "drift.detected", "{\"a\":1}"}),
            "id: 7\nevent: drift.detected\ndata: {\"a\":1}\n\n");
  EXPECT_EQ(FormatSseEvent({"", "", "one\ntwo\r\nthree\rfour"}),
            "data: one\ndata: two\ndata: three\ndata: four\n\n");
  EXPECT_EQ(FormatSseEvent({"1\n2", "a\rb", ""}), "id: 12\nevent: ab\ndata: \n\n");
}

TEST(HandleRawRequestTest, ParsesAndRoutesLikeAConnection) {
  Router router = Routes();
  ServerOptions options;
  options.max_body_bytes = 10;
  Response r =
      HandleRawRequest(router, options, "GET /api/v1/runs/9 HTTP/1.1\r\nHost: x\r\n\r\n", true);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ok");
  r = HandleRawRequest(router, options, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", true);
  EXPECT_EQ(r.status, 404);
  r = HandleRawRequest(router, options,
                       "POST /api/v1/runs/9/cancel HTTP/1.1\r\nContent-Length: 11\r\n\r\n", true);
  EXPECT_EQ(r.status, 413);
  r = HandleRawRequest(router, options,
                       "POST /api/v1/runs/9/cancel HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "6\r\nabcdef\r\n6\r\nabcdef\r\n0\r\n\r\n",
                       true);
  EXPECT_EQ(r.status, 413);
  r = HandleRawRequest(router, options, "GARBAGE\r\n\r\n", true);
  EXPECT_EQ(r.status, 400);
  r = HandleRawRequest(router, options, "GET /api/v1/runs/9 HTTP/1.1\r\nHost: x\r\n", true);
  EXPECT_EQ(r.status, 400);  // the header never ended
  // A body shorter than its Content-Length (found by http_fuzz: the loop used to spin).
  r = HandleRawRequest(router, options,
                       "POST /api/v1/runs/9/cancel HTTP/1.1\r\nContent-Length: 9\r\n\r\n{}", true);
  EXPECT_EQ(r.status, 400);
}

}  // namespace
}  // namespace driftless::server::http
