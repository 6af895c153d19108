// The one file that includes Boost.Beast and Asio (compile time: everything else sees only
// server.h). Beast parses requests; responses and event streams are written as plain bytes.
//
// Threads: `io_threads` run the io_context; every connection is a Session on a strand of its
// own, so its handlers never run concurrently. Blocking handlers run on the worker pool and
// answer through their Responder, which posts back to the session's strand. A Session keeps
// the Core (and so the io_context) alive, so a Responder that outlives the server is harmless;
// once the server has stopped, nothing more is posted.

#include "server/http/server.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "base/strings.h"

namespace driftless::server::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using GenericSocket = net::generic::stream_protocol::socket;
using Clock = std::chrono::steady_clock;
using Parser = bhttp::request_parser<bhttp::string_body>;

// A fixed pool of threads for handlers that may block.
class WorkerPool {
 public:
  void Start(int threads) {
    for (int i = 0; i < std::max(threads, 1); ++i) threads_.emplace_back([this] { Loop(); });
  }
  void Submit(std::function<void()> task) {
    {
      std::lock_guard lock(mu_);
      if (stopped_) return;
      queue_.push_back(std::move(task));
    }
    cv_.notify_one();
  }
  // Drops the tasks not started, waits for the running ones.
  void Stop() {
    std::deque<std::function<void()>> dropped;
    {
      std::lock_guard lock(mu_);
      stopped_ = true;
      dropped.swap(queue_);
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

 private:
  void Loop() {
    while (true) {
      std::function<void()> task;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return stopped_ || !queue_.empty(); });
        if (queue_.empty()) return;
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      task();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  std::vector<std::thread> threads_;
  bool stopped_ = false;
};

std::string_view View(beast::string_view s) { return {s.data(), s.size()}; }

// A header value or name without CR, LF and NUL (response splitting).
std::string HeaderSafe(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c != '\r' && c != '\n' && c != '\0') out += c;
  }
  return out;
}

// The response for a request that could not be parsed (`in_header`: the header was not
// complete, so a body limit is the Content-Length's).
Response ParseFailure(const beast::error_code& ec, const ServerOptions& options, bool in_header) {
  if (ec == bhttp::error::header_limit) {
    return Response::Error(
        431, "header_too_large",
        "the request header is larger than " + std::to_string(options.max_header_bytes) + " bytes");
  }
  if (ec == bhttp::error::body_limit && in_header) {
    return Response::Error(
        413, "payload_too_large",
        "Content-Length is above the cap of " + std::to_string(options.max_body_bytes) + " bytes");
  }
  if (ec == bhttp::error::body_limit) {
    return Response::Error(
        413, "payload_too_large",
        "the request body is larger than " + std::to_string(options.max_body_bytes) + " bytes");
  }
  return Response::Error(400, "bad_request", "malformed HTTP request: " + ec.message());
}

std::optional<Response> BodyTooLarge(const Parser& parser, const ServerOptions& options) {
  auto length = parser.content_length();
  if (length && *length > options.max_body_bytes) {
    return Response::Error(413, "payload_too_large",
                           "Content-Length " + std::to_string(*length) + " is above the cap of " +
                               std::to_string(options.max_body_bytes) + " bytes");
  }
  return std::nullopt;
}

// Fills `request` from a parsed message and routes it: the matched route, or the response that
// refuses the request before any handler.
std::variant<const Route*, Response> Prepare(const Router& router, Parser& parser,
                                             Request& request) {
  auto& msg = parser.get();
  request.method = std::string(View(msg.method_string()));
  request.target = std::string(View(msg.target()));
  size_t q = request.target.find('?');
  request.path = request.target.substr(0, q);
  request.query = q == std::string::npos ? "" : request.target.substr(q + 1);
  request.headers.clear();
  for (const auto& field : msg) {
    request.headers.emplace_back(AsciiLower(View(field.name_string())),
                                 std::string(View(field.value())));
  }
  request.body = std::move(msg.body());
  std::string_view sent_id = request.Header("x-request-id");
  request.request_id = AcceptableRequestId(sent_id) ? std::string(sent_id) : NewRequestId();

  RouteMatch match = router.Match(request.method, request.path);
  std::string what = Printable(request.method, 20) + " " + Printable(request.path);
  switch (match.kind) {
    case RouteMatch::Kind::kNotFound:
      return Response::Error(404, "not_found", "no route for " + what);
    case RouteMatch::Kind::kMethodNotAllowed: {
      Response r = Response::Error(405, "method_not_allowed",
                                   "no route for " + what + " (allowed: " + match.allow + ")");
      r.headers.emplace_back("Allow", match.allow);
      return r;
    }
    case RouteMatch::Kind::kBadRequest:
      if (match.route != nullptr) request.route = match.route->pattern;
      return Response::Error(400, "invalid_parameter", match.message);
    case RouteMatch::Kind::kFound:
      break;
  }
  request.route = match.route->pattern;
  request.params = std::move(match.params);
  return match.route;
}

// Runs the authenticator (when the route needs a right): nullopt to go on, else the refusal.
std::optional<Response> Authenticate(const Route& route, const ServerOptions& options,
                                     Request& request) {
  if (route.options.required_right.empty()) return std::nullopt;
  if (!options.authenticator) {
    return Response::Error(500, "internal",
                           "route " + route.pattern + " needs a right but no authenticator is set");
  }
  AuthDecision d = options.authenticator(request, route.options.required_right);
  if (d.status == 200) {
    request.principal = std::move(d.principal);
    request.principal_scope = std::move(d.scope);
    return std::nullopt;
  }
  // 401 and 403 as decided; an authenticator may also answer another 4xx or 5xx (a malformed
  // or unknown run id, a state that failed); anything else refuses with 401.
  int status = d.status >= 400 && d.status <= 599 ? d.status : 401;
  std::string code = !d.error_code.empty() ? d.error_code
                     : status == 403       ? "forbidden"
                     : status == 401       ? "unauthorized"
                                           : std::string(DefaultErrorCode(status));
  std::string message = !d.message.empty() ? d.message
                        : status == 403    ? "this token may not " + route.options.required_right
                                           : "a bearer token is required";
  Response r = Response::Error(status, code, message);
  if (status == 401) r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

std::string Serialize(Response& r, std::string_view request_id, bool keep_alive) {
  if (r.status >= 400) EnsureEnvelope(r, request_id);
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " ";
  out += StatusText(r.status);
  out += "\r\nContent-Type: " + HeaderSafe(r.content_type);
  out += "\r\nContent-Length: " + std::to_string(r.body.size());
  out += "\r\nX-Request-Id: " + HeaderSafe(request_id);
  out += keep_alive ? "\r\nConnection: keep-alive" : "\r\nConnection: close";
  for (const auto& [name, value] : r.headers) {
    out += "\r\n" + HeaderSafe(name) + ": " + HeaderSafe(value);
  }
  out += "\r\n\r\n";
  out += r.body;
  return out;
}

class Session;

// What the sessions share: options, router, the io_context, the registry of open sessions.
struct Core {
  Core(Router r, ServerOptions o) : router(std::move(r)), options(std::move(o)) {}

  Router router;
  ServerOptions options;
  net::io_context ioc;
  net::ip::tcp::acceptor tcp_acceptor{ioc};
  net::local::stream_protocol::acceptor unix_acceptor{ioc};
  net::steady_timer accept_retry{ioc};
  WorkerPool workers;
  std::atomic<bool> stopping{false};

  std::mutex mu;
  std::condition_variable cv;
  bool posts_open = true;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;

  // Posts to a session's strand unless the server has stopped.
  template <typename F>
  bool Post(const GenericSocket::executor_type& ex, F&& f) {
    std::lock_guard lock(mu);
    if (!posts_open) return false;
    net::post(ex, std::forward<F>(f));
    return true;
  }
  size_t Register(const std::shared_ptr<Session>& s) {
    std::lock_guard lock(mu);
    sessions.emplace(s.get(), s);
    return sessions.size();
  }
  void Unregister(Session* s) {
    {
      std::lock_guard lock(mu);
      sessions.erase(s);
    }
    cv.notify_all();
  }
  std::vector<std::shared_ptr<Session>> Sessions() {
    std::lock_guard lock(mu);
    std::vector<std::shared_ptr<Session>> out;
    for (auto& [raw, weak] : sessions) {
      if (auto s = weak.lock()) out.push_back(std::move(s));
    }
    return out;
  }
};

// One connection: requests one after the other (keep-alive), or one event stream.
class Session : public EventStream,
                public detail::Exchange,
                public std::enable_shared_from_this<Session> {
 public:
  Session(std::shared_ptr<Core> core, GenericSocket socket)
      : core_(std::move(core)),
        options_(core_->options),
        socket_(std::move(socket)),
        timer_(socket_.get_executor()) {}

  void Start(bool over_cap) {
    if (over_cap) {
      Respond(Response::Error(503, "too_many_connections",
                              "the server holds " + std::to_string(options_.max_connections) +
                                  " connections already; retry later"),
              /*close=*/true);
      return;
    }
    ArmTimer(options_.header_timeout);
    ReadHeader();
  }

  // Called on the strand when the server begins to stop.
  void OnStop() {
    if (state_ == State::kIdle || state_ == State::kReadingHeader) return Shut();
    if (state_ == State::kStreaming) return CloseStream();
    // Reading or handling: the response says Connection: close.
  }
  void ForceClose() { Shut(); }
  GenericSocket::executor_type executor() { return socket_.get_executor(); }

  // detail::Exchange
  void Finish(Response response) override {
    auto self = shared_from_this();
    core_->Post(socket_.get_executor(), [self, r = std::move(response)]() mutable {
      if (self->state_ == State::kHandling) self->Respond(std::move(r), false);
    });
  }
  std::shared_ptr<EventStream> Stream(StreamOptions stream_options) override {
    auto self = shared_from_this();
    if (!core_->Post(socket_.get_executor(), [self, o = std::move(stream_options)]() mutable {
          self->StartStream(std::move(o));
        })) {
      stream_closed_ = true;
    }
    return self;
  }

  // EventStream
  bool Send(const SseEvent& event) override { return Enqueue(FormatSseEvent(event)); }
  bool Comment(std::string_view text) override {
    std::string line = ": " + HeaderSafe(text) + "\n\n";
    return Enqueue(std::move(line));
  }
  void Close() override;
  bool closed() const override { return stream_closed_; }
  size_t unsent() const override { return unsent_; }
  void OnClose(std::function<void()> callback) override {
    auto self = shared_from_this();
    if (!core_->Post(socket_.get_executor(), [self, callback]() mutable {
          if (self->closed_) {
            callback();
          } else {
            self->on_close_ = std::move(callback);
          }
        })) {
      callback();
    }
  }

 private:
  enum class State { kIdle, kReadingHeader, kReadingBody, kHandling, kWriting, kStreaming, kDone };

  void ArmTimer(std::chrono::milliseconds after) { ArmTimerAt(Clock::now() + after); }
  // One timer per session; a new deadline replaces the last (the generation drops stale ones).
  void ArmTimerAt(Clock::time_point when) {
    uint64_t generation = ++timer_generation_;
    timer_.expires_at(when);
    timer_.async_wait([self = shared_from_this(), generation](beast::error_code ec) {
      if (ec || generation != self->timer_generation_) return;
      self->OnTimer();
    });
  }
  void CancelTimer() {
    ++timer_generation_;
    timer_.cancel();
  }

  void OnTimer() {
    switch (state_) {
      case State::kReadingHeader:
      case State::kReadingBody:
        timed_out_ = true;
        socket_.cancel();  // the read completes with operation_aborted and answers 408
        return;
      case State::kStreaming:
        return Heartbeat();
      case State::kHandling:
        return;
      default:
        return Shut();  // idle too long, a response not taken, a lingering close
    }
  }

  // Waits for the next request of a kept-alive connection.
  void WaitForRequest() {
    if (core_->stopping) return Shut();
    if (buffer_.size() > 0) {  // pipelined
      ArmTimer(options_.header_timeout);
      return ReadHeader();
    }
    state_ = State::kIdle;
    ArmTimer(options_.idle_timeout);
    socket_.async_wait(GenericSocket::wait_read, [self = shared_from_this()](beast::error_code ec) {
      if (self->state_ != State::kIdle) return;
      if (ec) return self->Shut();
      self->ArmTimer(self->options_.header_timeout);
      self->ReadHeader();
    });
  }

  void ReadHeader() {
    state_ = State::kReadingHeader;
    request_ = std::make_shared<Request>();
    started_ = Clock::now();
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(options_.max_header_bytes));
    parser_->body_limit(options_.max_body_bytes);
    bhttp::async_read_header(
        socket_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  // A read failed: answer what can be answered, close quietly when the client went away.
  void ReadFailed(const beast::error_code& ec, std::string_view phase) {
    if (timed_out_) {
      return Respond(
          Response::Error(408, "request_timeout",
                          "the request " + std::string(phase) + " did not arrive within " +
                              std::to_string(phase == "header" ? options_.header_timeout.count()
                                                               : options_.body_timeout.count()) +
                              " ms"),
          true);
    }
    if (ec == bhttp::error::end_of_stream || ec == net::error::eof ||
        ec == net::error::connection_reset || ec == net::error::operation_aborted ||
        ec == net::error::bad_descriptor || ec == bhttp::error::partial_message) {
      return Shut();
    }
    Respond(ParseFailure(ec, options_, phase == "header"), true);
  }

  void OnHeader(const beast::error_code& ec) {
    if (state_ != State::kReadingHeader) return;
    if (ec) return ReadFailed(ec, "header");
    started_ = Clock::now();
    std::string_view sent_id = View(parser_->get()["x-request-id"]);
    if (AcceptableRequestId(sent_id)) request_->request_id = std::string(sent_id);
    if (auto refusal = BodyTooLarge(*parser_, options_)) return Respond(std::move(*refusal), true);
    if (parser_->is_done()) return Dispatch();
    state_ = State::kReadingBody;
    ArmTimer(options_.body_timeout);
    auto read_body = [self = shared_from_this()] {
      bhttp::async_read(self->socket_, self->buffer_, *self->parser_,
                        [self](beast::error_code ec, size_t) { self->OnBody(ec); });
    };
    if (AsciiLower(View(parser_->get()[bhttp::field::expect])) == "100-continue") {
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      net::async_write(socket_, net::buffer(kContinue),
                       [self = shared_from_this(), read_body](beast::error_code ec, size_t) {
                         if (self->state_ != State::kReadingBody) return;
                         if (ec) return self->Shut();
                         read_body();
                       });
      return;
    }
    read_body();
  }

  void OnBody(const beast::error_code& ec) {
    if (state_ != State::kReadingBody) return;
    if (ec) return ReadFailed(ec, "body");
    Dispatch();
  }

  void Dispatch() {
    CancelTimer();
    state_ = State::kHandling;
    auto prepared = Prepare(core_->router, *parser_, *request_);
    keep_alive_ = parser_->get().keep_alive();
    parser_.reset();
    if (auto* refusal = std::get_if<Response>(&prepared))
      return Respond(std::move(*refusal), false);
    const Route* route = std::get<const Route*>(prepared);
    auto run = [self = shared_from_this(), route, request = request_] {
      if (auto refusal = Authenticate(*route, self->options_, *request)) {
        self->Finish(std::move(*refusal));
        return;
      }
      try {
        route->handler(*request, Responder(self));
      } catch (...) {
        // The Responder, destroyed on the way out, has answered 500 unless the handler had.
      }
    };
    if (route->options.blocking) {
      core_->workers.Submit(std::move(run));
    } else {
      run();
    }
  }

  void Respond(Response response, bool close) {
    if (state_ == State::kDone) return;
    bool keep = keep_alive_ && !close && !core_->stopping && response.status < 500 &&
                response.status != 408 && response.status != 413 && response.status != 431;
    if (request_->request_id.empty()) request_->request_id = NewRequestId();
    record_.status = response.status;
    record_.bytes_out = response.body.size();
    write_buffer_ = Serialize(response, request_->request_id, keep);
    state_ = State::kWriting;
    ArmTimer(options_.body_timeout);
    net::async_write(socket_, net::buffer(write_buffer_),
                     [self = shared_from_this(), keep](beast::error_code ec, size_t) {
                       self->LogRequest();
                       if (ec) return self->Shut();
                       if (!keep) return self->Linger();
                       self->WaitForRequest();
                     });
  }

  void LogRequest() {
    if (!options_.access_log || request_->request_id.empty()) return;
    record_.method = request_->method;
    record_.route = request_->route;
    record_.request_id = request_->request_id;
    record_.principal = request_->principal;
    record_.duration_ms =
        std::chrono::duration<double, std::milli>(Clock::now() - started_).count();
    options_.access_log(record_);
  }

  // Closes our side, then reads what the client still sends (so that it sees the response
  // rather than a reset) until it closes too or the timer fires.
  void Linger() {
    if (state_ == State::kDone) return;
    state_ = State::kWriting;
    beast::error_code ignored;
    socket_.shutdown(GenericSocket::shutdown_send, ignored);
    ArmTimer(std::min(options_.header_timeout, std::chrono::milliseconds(1000)));
    Discard();
  }
  // Reads and drops what the client sends until it closes (or an error): that ends a lingering
  // close, and tells a stream that its client went away. One read at a time.
  void Discard() {
    if (discarding_) return;
    discarding_ = true;
    socket_.async_read_some(net::buffer(sink_),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              self->discarding_ = false;
                              if (ec) return self->Shut();
                              self->Discard();
                            });
  }

  // Event streams.
  void StartStream(StreamOptions stream_options) {
    if (state_ != State::kHandling) return;
    state_ = State::kStreaming;
    record_.status = 200;
    heartbeat_ = stream_options.heartbeat;
    std::string head =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        "X-Accel-Buffering: no\r\nConnection: close\r\nX-Request-Id: " +
        HeaderSafe(request_->request_id) + "\r\n";
    for (const auto& [name, value] : stream_options.headers) {
      head += HeaderSafe(name) + ": " + HeaderSafe(value) + "\r\n";
    }
    head += "\r\n";
    header_bytes_ = head.size();
    unsent_ += head.size();
    pending_ = std::move(head) + pending_;
    WriteNext();
    Discard();
    if (heartbeat_.count() > 0) ArmTimer(heartbeat_);
  }

  bool Enqueue(std::string text) {
    if (stream_closed_) return false;
    auto self = shared_from_this();
    const size_t size = text.size();
    unsent_ += size;
    if (!core_->Post(socket_.get_executor(),
                     [self, text = std::move(text)]() mutable { self->Append(std::move(text)); })) {
      unsent_ -= size;
      stream_closed_ = true;
      return false;
    }
    return true;
  }

  // Appends `text` (counted in unsent_ already) to what is to be written.
  void Append(std::string text) {
    if (state_ != State::kStreaming || closing_stream_) {
      unsent_ -= text.size();
      return;
    }
    if (pending_.size() + writing_.size() + text.size() > options_.max_stream_buffer) {
      return Shut();  // the client does not read
    }
    pending_ += text;
    WriteNext();
  }

  void WriteNext() {
    if (write_in_progress_ || pending_.empty()) return;
    write_in_progress_ = true;
    writing_.swap(pending_);
    pending_.clear();
    last_output_ = Clock::now();
    net::async_write(socket_, net::buffer(writing_),
                     [self = shared_from_this()](beast::error_code ec, size_t n) {
                       self->write_in_progress_ = false;
                       self->record_.bytes_out += n;
                       self->unsent_ -= n;  // every byte written was counted first
                       self->writing_.clear();
                       if (ec) return self->Shut();
                       if (!self->pending_.empty()) return self->WriteNext();
                       if (self->closing_stream_) self->Linger();
                     });
  }

  void Heartbeat() {
    auto next = last_output_ + heartbeat_;
    if (Clock::now() >= next && !closing_stream_) {
      constexpr std::string_view kHeartbeat = ": heartbeat\n\n";
      unsent_ += kHeartbeat.size();
      Append(std::string(kHeartbeat));
      next = Clock::now() + heartbeat_;
    }
    ArmTimerAt(next);
  }

  void CloseStream() {
    stream_closed_ = true;
    if (state_ != State::kStreaming) return;
    closing_stream_ = true;
    if (!write_in_progress_ && pending_.empty()) Linger();
  }

  // Ends the connection (on the strand).
  void Shut();

  std::shared_ptr<Core> core_;
  const ServerOptions& options_;
  GenericSocket socket_;
  net::steady_timer timer_;
  uint64_t timer_generation_ = 0;
  beast::flat_buffer buffer_;
  std::optional<Parser> parser_;
  std::shared_ptr<Request> request_ = std::make_shared<Request>();
  State state_ = State::kReadingHeader;
  bool keep_alive_ = false;
  bool timed_out_ = false;
  bool closed_ = false;
  bool discarding_ = false;
  Clock::time_point started_ = Clock::now();
  AccessRecord record_;
  std::string write_buffer_;
  char sink_[512];

  // Event stream.
  std::atomic<bool> stream_closed_{false};
  std::atomic<size_t> unsent_{0};  // bytes of the stream queued and not written yet
  bool closing_stream_ = false;
  bool write_in_progress_ = false;
  std::string pending_, writing_;
  size_t header_bytes_ = 0;
  std::chrono::milliseconds heartbeat_{0};
  Clock::time_point last_output_ = Clock::now();
  std::function<void()> on_close_;
};

void Session::Close() {
  stream_closed_ = true;
  auto self = shared_from_this();
  core_->Post(socket_.get_executor(), [self] { self->CloseStream(); });
}

void Session::Shut() {
  if (closed_) return;
  bool was_stream = state_ == State::kStreaming || closing_stream_;
  closed_ = true;
  stream_closed_ = true;
  state_ = State::kDone;
  CancelTimer();
  beast::error_code ignored;
  socket_.close(ignored);
  if (was_stream) {
    record_.bytes_out -= std::min<uint64_t>(record_.bytes_out, header_bytes_);
    LogRequest();
  }
  if (on_close_) {
    auto callback = std::move(on_close_);
    callback();
  }
  core_->Unregister(this);
}

}  // namespace

std::string FormatSseEvent(const SseEvent& event) {
  std::string out;
  if (!event.id.empty()) out += "id: " + HeaderSafe(event.id) + "\n";
  if (!event.type.empty()) out += "event: " + HeaderSafe(event.type) + "\n";
  std::string_view data = event.data;
  while (true) {
    size_t end = data.find_first_of("\r\n");
    out += "data: ";
    out += data.substr(0, end);
    out += "\n";
    if (end == std::string_view::npos) break;
    size_t skip = data.compare(end, 2, "\r\n") == 0 ? 2 : 1;
    data.remove_prefix(end + skip);
  }
  out += "\n";
  return out;
}

Responder::Responder(std::shared_ptr<detail::Exchange> exchange) : exchange_(std::move(exchange)) {}

Responder::~Responder() {
  if (exchange_) {
    exchange_->Finish(Response::Error(500, "internal", "the handler did not answer"));
  }
}

void Responder::Send(Response response) {
  if (!exchange_) return;
  auto exchange = std::move(exchange_);
  exchange_.reset();
  exchange->Finish(std::move(response));
}

std::shared_ptr<EventStream> Responder::OpenStream(StreamOptions options) {
  if (!exchange_) return nullptr;
  auto exchange = std::move(exchange_);
  exchange_.reset();
  return exchange->Stream(std::move(options));
}

struct Server::Impl {
  std::shared_ptr<Core> core;
  std::vector<std::thread> io_threads;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::optional<net::signal_set> signals;
  uint16_t port = 0;

  std::mutex mu;
  std::condition_variable cv;
  bool started = false, stop_requested = false, stopping = false, stopped = false;

  void AcceptTcp() {
    core->tcp_acceptor.async_accept(net::make_strand(core->ioc),
                                    [this](beast::error_code ec, net::ip::tcp::socket socket) {
                                      if (core->stopping) return;
                                      if (ec) return RetryAccept([this] { AcceptTcp(); });
                                      beast::error_code ignored;
                                      socket.set_option(net::ip::tcp::no_delay(true), ignored);
                                      StartSession(GenericSocket(std::move(socket)));
                                      AcceptTcp();
                                    });
  }
  void AcceptUnix() {
    core->unix_acceptor.async_accept(
        net::make_strand(core->ioc),
        [this](beast::error_code ec, net::local::stream_protocol::socket socket) {
          if (core->stopping) return;
          if (ec) return RetryAccept([this] { AcceptUnix(); });
          StartSession(GenericSocket(std::move(socket)));
          AcceptUnix();
        });
  }
  // After an accept error (out of descriptors, most likely): try again a little later rather
  // than spin.
  void RetryAccept(std::function<void()> again) {
    core->accept_retry.expires_after(std::chrono::milliseconds(50));
    core->accept_retry.async_wait([this, again](beast::error_code ec) {
      if (!ec && !core->stopping) again();
    });
  }
  void StartSession(GenericSocket socket) {
    auto session = std::make_shared<Session>(core, std::move(socket));
    size_t count = core->Register(session);
    bool over_cap = count > core->options.max_connections;
    net::post(session->executor(), [session, over_cap] { session->Start(over_cap); });
  }

  void RequestStop() {
    {
      std::lock_guard lock(mu);
      stop_requested = true;
    }
    cv.notify_all();
  }

  void DoStop();
};

void Server::Impl::DoStop() {
  core->stopping = true;
  // Stop accepting, and tell every session (idle ones close, streams close after a flush,
  // requests in flight finish with Connection: close).
  net::post(core->ioc, [c = core] {
    beast::error_code ignored;
    c->tcp_acceptor.close(ignored);
    c->unix_acceptor.close(ignored);
    c->accept_retry.cancel();
    if (!c->options.unix_path.empty()) ::unlink(c->options.unix_path.c_str());
  });
  if (signals) {
    net::post(core->ioc, [this] {
      beast::error_code ignored;
      signals->cancel(ignored);
    });
  }
  for (auto& session : core->Sessions()) {
    net::post(session->executor(), [session] { session->OnStop(); });
  }
  {
    std::unique_lock lock(core->mu);
    core->cv.wait_for(lock, core->options.stop_grace, [this] { return core->sessions.empty(); });
  }
  for (auto& session : core->Sessions()) {
    net::post(session->executor(), [session] { session->ForceClose(); });
  }
  {
    std::unique_lock lock(core->mu);
    core->cv.wait(lock, [this] { return core->sessions.empty(); });
  }
  core->workers.Stop();
  {
    std::lock_guard lock(core->mu);
    core->posts_open = false;
  }
  work.reset();
  for (auto& t : io_threads) t.join();
  io_threads.clear();
}

Server::Server(Router router, ServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->core = std::make_shared<Core>(std::move(router), std::move(options));
}

Server::~Server() { Stop(); }

Status Server::Start() {
  Core& core = *impl_->core;
  const ServerOptions& o = core.options;
  if (impl_->started) return MakeError("the server was already started");
  if (o.tcp_address.empty() && o.unix_path.empty()) {
    return MakeError("no listener: set a TCP address or a unix socket path");
  }
  beast::error_code ec;
  if (!o.tcp_address.empty()) {
    std::string where = "listen on " + o.tcp_address + ":" + std::to_string(o.tcp_port) + ": ";
    auto address = net::ip::make_address(o.tcp_address, ec);
    if (ec) return MakeError(where + "not an IP address");
    net::ip::tcp::endpoint endpoint(address, o.tcp_port);
    core.tcp_acceptor.open(endpoint.protocol(), ec);
    if (!ec) core.tcp_acceptor.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) core.tcp_acceptor.bind(endpoint, ec);
    if (!ec) core.tcp_acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (ec) return MakeError(where + ec.message());
    impl_->port = core.tcp_acceptor.local_endpoint().port();
  }
  if (!o.unix_path.empty()) {
    std::string where = "listen on unix socket " + o.unix_path + ": ";
    ::unlink(o.unix_path.c_str());
    net::local::stream_protocol::endpoint endpoint(o.unix_path);
    core.unix_acceptor.open(endpoint.protocol(), ec);
    if (!ec) core.unix_acceptor.bind(endpoint, ec);
    if (!ec) core.unix_acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (ec) return MakeError(where + ec.message());
  }
  impl_->started = true;
  impl_->work.emplace(core.ioc.get_executor());
  if (core.tcp_acceptor.is_open()) impl_->AcceptTcp();
  if (core.unix_acceptor.is_open()) impl_->AcceptUnix();
  core.workers.Start(o.worker_threads);
  for (int i = 0; i < std::max(o.io_threads, 1); ++i) {
    impl_->io_threads.emplace_back([c = impl_->core] { c->ioc.run(); });
  }
  return Status::Ok();
}

uint16_t Server::tcp_port() const { return impl_->port; }

void Server::Stop() {
  {
    std::unique_lock lock(impl_->mu);
    if (!impl_->started) {
      impl_->stopped = true;
      impl_->cv.notify_all();
      return;
    }
    if (impl_->stopping) {
      impl_->cv.wait(lock, [this] { return impl_->stopped; });
      return;
    }
    impl_->stopping = true;
  }
  impl_->DoStop();
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopped = true;
  }
  impl_->cv.notify_all();
}

void Server::StopOnSignals() {
  impl_->signals.emplace(impl_->core->ioc, SIGTERM, SIGINT);
  impl_->signals->async_wait([impl = impl_.get()](beast::error_code ec, int) {
    if (!ec) impl->RequestStop();
  });
}

void Server::Wait() {
  {
    std::unique_lock lock(impl_->mu);
    impl_->cv.wait(lock, [this] { return impl_->stop_requested || impl_->stopped; });
  }
  Stop();
}

size_t Server::open_connections() const {
  std::lock_guard lock(impl_->core->mu);
  return impl_->core->sessions.size();
}

namespace {

// Captures a synchronous handler's answer for HandleRawRequest.
class CapturingExchange : public detail::Exchange {
 public:
  void Finish(Response response) override { response_ = std::move(response); }
  std::shared_ptr<EventStream> Stream(StreamOptions) override {
    response_ = Response::Text(200, "(event stream)");
    return nullptr;
  }
  std::optional<Response> response_;
};

}  // namespace

Response HandleRawRequest(const Router& router, const ServerOptions& options,
                          std::string_view bytes, bool call_handler) {
  Parser parser;
  parser.header_limit(static_cast<uint32_t>(options.max_header_bytes));
  parser.body_limit(options.max_body_bytes);
  parser.eager(true);
  beast::error_code ec;
  net::const_buffer rest(bytes.data(), bytes.size());
  bool checked_length = false;
  std::optional<Response> refused;
  while (!parser.is_done()) {
    size_t used = parser.put(rest, ec);
    rest += used;
    // Beast asks for more with need_more, or (in a body) by taking nothing without an error.
    if (ec == bhttp::error::need_more || (!ec && used == 0)) {
      ec = {};
      if (used == 0 || rest.size() == 0) {
        // All the input is in: the connection would wait for more; here the request ends.
        // (put_eof requires that something was parsed.)
        if (parser.got_some()) parser.put_eof(ec);
        if (!ec && !parser.is_done()) ec = bhttp::error::partial_message;
        break;
      }
      continue;
    }
    if (ec) break;
    if (parser.is_header_done() && !checked_length) {
      checked_length = true;
      if ((refused = BodyTooLarge(parser, options))) break;
    }
  }
  Request request;
  request.request_id = NewRequestId();
  if (refused) {
    EnsureEnvelope(*refused, request.request_id);
    return *refused;
  }
  if (ec) {
    Response r = ParseFailure(ec, options, !parser.is_header_done());
    EnsureEnvelope(r, request.request_id);
    return r;
  }
  auto prepared = Prepare(router, parser, request);
  Response response;
  if (auto* refusal = std::get_if<Response>(&prepared)) {
    response = std::move(*refusal);
  } else {
    const Route* route = std::get<const Route*>(prepared);
    if (auto auth = Authenticate(*route, options, request)) {
      response = std::move(*auth);
    } else if (call_handler) {
      auto exchange = std::make_shared<CapturingExchange>();
      route->handler(request, Responder(exchange));
      response = exchange->response_ ? std::move(*exchange->response_)
                                     : Response::Error(500, "internal", "no synchronous answer");
    }
  }
  if (response.status >= 400) EnsureEnvelope(response, request.request_id);
  return response;
}

}  // namespace driftless::server::http
