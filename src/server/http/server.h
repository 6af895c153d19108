#pragma once

// An asynchronous HTTP/1.1 server (Boost.Beast behind this header: only server.cc includes it):
// TCP and unix-socket listeners, keep-alive, header, body and idle timeouts, a connection cap,
// body caps, request ids, the error envelope, an authenticator hook, server-sent event streams,
// a worker pool for handlers that block, an access log hook and a graceful stop.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "server/http/message.h"
#include "server/http/router.h"

namespace driftless::server::http {

/// One server-sent event.
struct SseEvent {
  std::string id;    ///< the `id:` field ("" for none); clients resume with Last-Event-ID
  std::string type;  ///< the `event:` field ("" for the default "message")
  std::string data;  ///< one `data:` line per line of it
};

/// The wire form of an event: "id: ..\nevent: ..\ndata: ..\n\n" (CR and LF in id and type are
/// dropped; data is split on LF, CR LF or CR).
std::string FormatSseEvent(const SseEvent& event);

/// An open event stream. Every member may be called from any thread.
class EventStream {
 public:
  virtual ~EventStream() = default;
  /// Queues an event; false once the stream is closed (the client went away, the stream's
  /// buffer passed its cap because the client does not read, or the server stops).
  virtual bool Send(const SseEvent& event) = 0;
  /// Queues a comment line (": text").
  virtual bool Comment(std::string_view text) = 0;
  /// Writes what is queued, then closes the connection.
  virtual void Close() = 0;
  /// True once the stream is closed or closing.
  virtual bool closed() const = 0;
  /// Bytes queued and not yet written to the socket (the header, events, comments): a writer
  /// with much to send (a replay) waits while this is high, so that the buffer cap is left for
  /// clients that do not read.
  virtual size_t unsent() const = 0;
  /// Called once, on an I/O thread, when the stream has ended for any reason (also when it
  /// already has: then at once). It must not block.
  virtual void OnClose(std::function<void()> callback) = 0;
};

/// How an event stream is opened.
struct StreamOptions {
  /// A comment line is written after this long without other output (0: none).
  std::chrono::milliseconds heartbeat{15000};
  /// Extra response headers.
  std::vector<std::pair<std::string, std::string>> headers;
};

namespace detail {
/// What a Responder answers through (implemented by the server).
class Exchange {
 public:
  virtual ~Exchange() = default;
  virtual void Finish(Response response) = 0;
  virtual std::shared_ptr<EventStream> Stream(StreamOptions options) = 0;
};
}  // namespace detail

/// A handler's way to answer, exactly once: Send a response, or OpenStream. Movable, usable from
/// any thread. Destroyed without an answer, it sends a 500 envelope.
class Responder {
 public:
  explicit Responder(std::shared_ptr<detail::Exchange> exchange);
  Responder(Responder&&) noexcept = default;
  Responder& operator=(Responder&&) noexcept = default;
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;
  ~Responder();

  /// Sends the response (a 4xx/5xx gets the envelope: see Response::Error).
  void Send(Response response);
  /// Answers 200 text/event-stream and returns the stream; the connection is the stream's
  /// until it closes.
  std::shared_ptr<EventStream> OpenStream(StreamOptions options = {});

 private:
  std::shared_ptr<detail::Exchange> exchange_;
};

/// What an authenticator decides for a request and a route's required right.
struct AuthDecision {
  int status = 200;        ///< 200 allows; 401 (who are you?) or 403 (not allowed) refuses
  std::string principal;   ///< who is asking, when allowed (Request::principal)
  std::string scope;       ///< what it may see, when allowed (Request::principal_scope)
  std::string message;     ///< why it refused, for the envelope
  std::string error_code;  ///< the envelope's code; default "unauthorized" / "forbidden"
};

/// Called before the handler of a route with a required right, on the thread the handler will
/// run on (the worker pool for blocking routes). `request.params` are set.
using Authenticator = std::function<AuthDecision(const Request& request, std::string_view right)>;

/// Called once per request, on an I/O thread; it must not block for long.
using AccessLog = std::function<void(const AccessRecord& record)>;

/// Where and how a server listens and what it tolerates.
struct ServerOptions {
  /// A TCP listener on this address ("" for none); port 0 picks a free one (see tcp_port()).
  std::string tcp_address = "127.0.0.1";
  uint16_t tcp_port = 0;
  /// A unix-socket listener at this path ("" for none); an existing socket file is replaced.
  std::string unix_path;

  size_t max_header_bytes = 16 * 1024;     ///< request line and headers; beyond: 431
  size_t max_body_bytes = 1024 * 1024;     ///< beyond: 413 (Content-Length, or while reading)
  size_t max_connections = 4096;           ///< beyond: 503 and the connection is closed
  size_t max_stream_buffer = 1024 * 1024;  ///< an event stream's unsent bytes; beyond: closed
  /// A connection must deliver a complete request header this long after it started sending
  /// it (after accept for the first request); a slow client gets 408 and is closed.
  std::chrono::milliseconds header_timeout{10000};
  /// The body must arrive, and a response be taken, within this long.
  std::chrono::milliseconds body_timeout{30000};
  /// A kept-alive connection with no request for this long is closed.
  std::chrono::milliseconds idle_timeout{60000};
  /// On Stop, in-flight requests get this long to finish before connections are cut.
  std::chrono::milliseconds stop_grace{10000};

  int io_threads = 1;      ///< threads running the asynchronous I/O
  int worker_threads = 4;  ///< threads running blocking handlers

  Authenticator authenticator;  ///< required when a route has a required right
  AccessLog access_log;         ///< optional
};

/// The server. Construct, Start, then Stop (or destroy).
class Server {
 public:
  Server(Router router, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds the listeners and starts the threads; an error names the address that failed.
  Status Start();
  /// The bound TCP port (after Start), 0 without a TCP listener.
  uint16_t tcp_port() const;
  /// Stops gracefully: stops accepting, closes idle connections, lets in-flight requests
  /// finish (up to stop_grace), closes event streams, then joins every thread. Idempotent;
  /// safe from any thread but a handler's.
  void Stop();
  /// Makes SIGTERM and SIGINT start a Stop (call before Start); Wait returns once stopped.
  void StopOnSignals();
  /// Blocks until the server has stopped (by Stop or a signal).
  void Wait();

  /// Connections open now (requests and streams); for tests and metrics.
  size_t open_connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Parses raw request bytes with the server's parser and limits and routes the result exactly
/// as a connection would, calling the matched handler (which must answer synchronously) when
/// `call_handler`; returns the response. For the fuzz target and tests: no socket involved.
Response HandleRawRequest(const Router& router, const ServerOptions& options,
                          std::string_view bytes, bool call_handler);

}  // namespace driftless::server::http
