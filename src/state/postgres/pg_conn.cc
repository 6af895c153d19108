#include "state/postgres/pg_conn.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

namespace driftless::state::pg_detail {

namespace {

// libpq's messages end in a newline and may span lines; one line reads better in an error.
std::string OneLine(const char* message) {
  std::string s = message != nullptr ? message : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  for (char& ch : s) {
    if (ch == '\n') ch = ' ';
  }
  if (s.rfind("ERROR:  ", 0) == 0) s.erase(0, 8);
  return s.empty() ? "unknown error" : s;
}

}  // namespace

std::string OneLineMessage(const char* message) { return OneLine(message); }

int64_t Rows::affected() const {
  const char* n = PQcmdTuples(r_);
  return n != nullptr && *n != '\0' ? std::strtoll(n, nullptr, 10) : 0;
}

int64_t Rows::Int(int row, int column) const {
  if (PQgetisnull(r_, row, column)) return 0;
  return std::strtoll(PQgetvalue(r_, row, column), nullptr, 10);
}

namespace {

// Idle sessions, by location and settings. Taken and given back under the mutex; a session is
// used by one connection at a time.
class SessionPool {
 public:
  static SessionPool& Get() {
    static SessionPool* pool = new SessionPool();  // never destroyed: used until exit
    return *pool;
  }

  std::unique_ptr<Session> Take(const std::string& key) {
    while (true) {
      std::unique_ptr<Session> s;
      {
        std::lock_guard<std::mutex> lock(mu_);
        ForgetInherited();
        auto it = idle_.find(key);
        if (it == idle_.end() || it->second.empty()) return nullptr;
        s = std::move(it->second.back());
        it->second.pop_back();
      }
      // A session the server ended while it was idle (a restart, pg_terminate_backend) has
      // input waiting: its last message and the end of the stream. An idle session of ours is
      // sent nothing (it listens to no channel), so anything to read means drop it.
      pollfd fd{PQsocket(s->conn), POLLIN, 0};
      if (PQstatus(s->conn) == CONNECTION_OK && fd.fd >= 0 && poll(&fd, 1, 0) == 0) return s;
    }
  }

  void Give(const std::string& key, std::unique_ptr<Session> s) {
    if (PQstatus(s->conn) != CONNECTION_OK || PQtransactionStatus(s->conn) != PQTRANS_IDLE ||
        s->bulky) {
      return;  // broken, left inside a transaction, or holding large buffers: closed
    }
    std::lock_guard<std::mutex> lock(mu_);
    ForgetInherited();
    std::vector<std::unique_ptr<Session>>& idle = idle_[key];
    if (idle.size() < Connection::kIdleSessions) idle.push_back(std::move(s));
  }

  size_t Idle(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    ForgetInherited();
    auto it = idle_.find(key);
    return it == idle_.end() ? 0 : it->second.size();
  }

 private:
  // A forked child inherits the parent's idle sessions: the same sockets, so using one would
  // interleave two processes' messages on one server session, and closing one (PQfinish)
  // would end the parent's. The child leaves them alone and connects its own.
  void ForgetInherited() {
    if (owner_ == getpid()) return;
    for (auto& [key, sessions] : idle_) {
      for (std::unique_ptr<Session>& s : sessions) (void)s.release();
    }
    idle_.clear();
    owner_ = getpid();
  }

  std::mutex mu_;
  pid_t owner_ = getpid();
  std::unordered_map<std::string, std::vector<std::unique_ptr<Session>>> idle_;
};

std::string Key(const std::string& location, const std::string& application_name, bool keepalive) {
  return location + '\n' + application_name + (keepalive ? "\n1" : "\n0");
}

// A new session with the settings every session of ours has.
Result<std::unique_ptr<Session>> Connect(const std::string& location, const std::string& shown,
                                         const char* application_name, bool keepalive) {
  // Defaults first: the location's own settings (expanded from dbname) override them.
  std::vector<const char*> keys = {"connect_timeout", "application_name", "client_encoding"};
  std::vector<const char*> values = {"10", application_name, "UTF8"};
  if (keepalive) {
    for (auto [k, v] : {std::pair{"keepalives_idle", "15"}, std::pair{"keepalives_interval", "5"},
                        std::pair{"keepalives_count", "3"}}) {
      keys.push_back(k);
      values.push_back(v);
    }
  }
  keys.push_back("dbname");
  values.push_back(location.c_str());
  keys.push_back(nullptr);
  values.push_back(nullptr);
  PGconn* conn = PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/1);
  if (conn == nullptr) {
    return MakeError("cannot connect to state " + shown + ": out of memory");
  }
  auto s = std::make_unique<Session>(conn);
  if (PQstatus(conn) != CONNECTION_OK) {
    return MakeError("cannot connect to state " + shown + ": " + OneLine(PQerrorMessage(conn)));
  }
  // Quiet NOTICEs ("schema already exists, skipping"): they would go to stderr.
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  // A session frozen inside one of our (short) transactions would keep its row locks, and with
  // them the environment's lock row, until the server noticed; this ends it sooner.
  PGresult* r = PQexec(conn, "SET idle_in_transaction_session_timeout = '30s'");
  const bool set = r != nullptr && PQresultStatus(r) == PGRES_COMMAND_OK;
  std::string reason =
      set ? "" : OneLine(r != nullptr ? PQresultErrorMessage(r) : PQerrorMessage(conn));
  if (r != nullptr) PQclear(r);
  if (!set) return MakeError("cannot configure the session in state " + shown + ": " + reason);
  return s;
}

}  // namespace

Connection::~Connection() {
  if (session_ && !listening_ && !in_transaction_) {
    SessionPool::Get().Give(PoolKey(), std::move(session_));
  }
  // A session still listening, or inside a transaction, is closed with session_.
}

std::string Connection::PoolKey() const { return Key(location_, application_name_, keepalive_); }

size_t Connection::IdleSessions(const std::string& location, const char* application_name,
                                bool keepalive) {
  return SessionPool::Get().Idle(Key(location, application_name, keepalive));
}

PGconn* Connection::handle() const { return session_ ? session_->conn : nullptr; }

Result<std::unique_ptr<Connection>> Connection::Open(const std::string& location,
                                                     const std::string& shown,
                                                     const char* application_name, bool keepalive) {
  std::unique_ptr<Connection> c(new Connection(location, shown, application_name, keepalive));
  // Connect now, so that a wrong location fails here rather than at the first statement.
  if (Status s = c->Attach(); !s.ok()) return s.error();
  c->Detach();
  return c;
}

Status Connection::Attach() {
  if (session_) {
    if (in_transaction_ || PQstatus(session_->conn) == CONNECTION_OK) return Status::Ok();
    // Broke outside a transaction (the server restarted, or the session was ended): a new
    // one. Inside one it is kept: the transaction's statements fail, and so does it.
    session_.reset();
  }
  session_ = SessionPool::Get().Take(PoolKey());
  if (session_) return Status::Ok();
  Result<std::unique_ptr<Session>> s =
      Connect(location_, shown_, application_name_.c_str(), keepalive_);
  if (!s.ok()) return s.error();
  session_ = std::move(*s);
  return Status::Ok();
}

void Connection::Detach() {
  if (!session_ || in_transaction_ || listening_) return;
  SessionPool::Get().Give(PoolKey(), std::move(session_));
  session_.reset();
}

Error Connection::Fail(std::string_view what, std::string_view reason) const {
  return MakeError("cannot " + std::string(what) + " in state " + shown_ + ": " +
                   std::string(reason));
}

Result<Rows> Connection::Exec(std::string_view sql, const Params& params, std::string_view what) {
  last_sqlstate_.clear();
  if (Status s = Attach(); !s.ok()) return s.error();
  struct Done {
    Connection* c;
    ~Done() { c->Detach(); }
  } done{this};
  PGconn* conn = session_->conn;
  std::string key(sql);
  auto it = session_->prepared.find(key);
  if (it == session_->prepared.end()) {
    std::string name = "dl" + std::to_string(session_->prepared.size() + 1);
    PGresult* prep = PQprepare(conn, name.c_str(), key.c_str(), 0, nullptr);
    Rows prepared(prep);
    if (prep == nullptr || PQresultStatus(prep) != PGRES_COMMAND_OK) {
      if (prep != nullptr) {
        const char* state = PQresultErrorField(prep, PG_DIAG_SQLSTATE);
        last_sqlstate_ = state != nullptr ? state : "";
      }
      return Fail(what,
                  OneLine(prep != nullptr ? PQresultErrorMessage(prep) : PQerrorMessage(conn)));
    }
    it = session_->prepared.emplace(std::move(key), std::move(name)).first;
  }
  std::vector<const char*> values;
  values.reserve(params.size());
  size_t sent = 0;
  for (const auto& v : params.values()) {
    values.push_back(v ? v->c_str() : nullptr);
    if (v) sent += v->size();
  }
  PGresult* r = PQexecPrepared(conn, it->second.c_str(), static_cast<int>(values.size()),
                               values.data(), nullptr, nullptr, 0);
  Rows rows(r);
  if (sent > kPooledMessageBytes || LargestRow(r) > kPooledMessageBytes) session_->bulky = true;
  if (Status ok = CheckResult(r, what); !ok.ok()) return ok.error();
  return rows;
}

size_t Connection::LargestRow(const PGresult* r) {
  // No row is larger than the whole result: most results are looked at no further.
  if (r == nullptr || PQresultMemorySize(r) <= kPooledMessageBytes) return 0;
  size_t largest = 0;
  const int columns = PQnfields(r);
  for (int row = 0, rows = PQntuples(r); row < rows; ++row) {
    size_t size = 0;
    for (int col = 0; col < columns; ++col) size += static_cast<size_t>(PQgetlength(r, row, col));
    largest = std::max(largest, size);
  }
  return largest;
}

Status Connection::CheckResult(const PGresult* r, std::string_view what) {
  if (r == nullptr) return Fail(what, OneLine(PQerrorMessage(session_->conn)));
  ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    last_sqlstate_ = state != nullptr ? state : "";
    return Fail(what, OneLine(PQresultErrorMessage(r)));
  }
  return Status::Ok();
}

Status Connection::Script(const std::string& sql, std::string_view what) {
  last_sqlstate_.clear();
  if (Status s = Attach(); !s.ok()) return s;
  PGresult* r = PQexec(session_->conn, sql.c_str());
  Rows rows(r);
  Status out = CheckResult(r, what);
  Detach();
  return out;
}

Status Connection::Listen(const std::string& sql, std::string_view what) {
  ++listening_;  // kept from here: the notifications come to this session
  Status s = Script(sql, what);
  if (!s.ok()) {
    --listening_;
    // It may listen to some of the channels: never given to another. (A session held for an
    // earlier Listen is replaced at the next statement, which then listens to nothing; the
    // waits of this class look again after their timeout anyway.)
    if (listening_ == 0) session_.reset();
  }
  return s;
}

Status Connection::Unlisten(const std::string& sql, std::string_view what) {
  Status s = Script(sql, what);
  if (listening_ > 0) --listening_;
  if (!s.ok() && listening_ == 0) {
    session_.reset();  // it may still listen: never given to another
    return s;
  }
  Detach();
  return s;
}

Result<bool> Connection::WaitForNotification(int timeout_ms) {
  if (!session_ || !listening_) return Fail("wait for a notification", "nothing is listened to");
  PGconn* conn = session_->conn;
  auto drain = [conn] {
    bool got = false;
    while (PGnotify* n = PQnotifies(conn)) {
      got = true;
      PQfreemem(n);
    }
    return got;
  };
  if (PQconsumeInput(conn) == 0) return Fail("wait for a lock", OneLine(PQerrorMessage(conn)));
  if (drain()) return true;
  pollfd fd{};
  fd.fd = PQsocket(conn);
  fd.events = POLLIN;
  if (fd.fd < 0) return Fail("wait for a lock", "the connection is closed");
  int ready = poll(&fd, 1, timeout_ms);
  if (ready <= 0) return false;  // timed out (or interrupted: the caller looks again anyway)
  if (PQconsumeInput(conn) == 0) return Fail("wait for a lock", OneLine(PQerrorMessage(conn)));
  return drain();
}

Result<Transaction> Transaction::Begin(Connection& c, const char* sql, std::string_view what) {
  c.in_transaction_ = true;  // the session is kept from BEGIN on
  Status s = c.Script(sql, what);
  if (!s.ok()) {
    c.in_transaction_ = false;
    c.Detach();
    return s.error();
  }
  return Transaction(&c);
}

Result<Transaction> Transaction::Write(Connection& c, std::string_view what) {
  return Begin(c, "BEGIN ISOLATION LEVEL READ COMMITTED", what);
}

Result<Transaction> Transaction::Read(Connection& c, std::string_view what) {
  return Begin(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", what);
}

Transaction::~Transaction() {
  if (c_ == nullptr) return;
  // A failed statement already aborted it; ROLLBACK ends the transaction either way.
  PGresult* r = PQexec(c_->handle(), "ROLLBACK");
  if (r != nullptr) PQclear(r);
  c_->in_transaction_ = false;
  c_->Detach();
}

Status Transaction::Commit(std::string_view what) {
  Connection* c = c_;
  c_ = nullptr;
  c->in_transaction_ = false;  // whatever COMMIT answers, the transaction is over
  struct Done {
    Connection* c;
    ~Done() { c->Detach(); }
  } done{c};
  // COMMIT of a transaction that had an error answers ROLLBACK: never report that as success.
  PGresult* r = PQexec(c->handle(), "COMMIT");
  Rows rows(r);
  if (r == nullptr || PQresultStatus(r) != PGRES_COMMAND_OK) {
    return c->Fail(what,
                   OneLine(r != nullptr ? PQresultErrorMessage(r) : PQerrorMessage(c->handle())));
  }
  if (std::string_view(PQcmdStatus(r)) != "COMMIT") {
    return c->Fail(what, "the transaction was rolled back");
  }
  return Status::Ok();
}

namespace {

template <typename Items>
std::string Encode(const Items& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (char ch : items[i]) {
      if (ch == '"' || ch == '\\') out += '\\';
      out += ch;
    }
    out += '"';
  }
  out += '}';
  return out;
}

}  // namespace

std::string EncodeTextArray(const std::vector<std::string>& items) { return Encode(items); }
std::string EncodeTextArray(const std::vector<std::string_view>& items) { return Encode(items); }

bool DecodeTextArray(std::string_view text, std::vector<std::string>* out) {
  out->clear();
  if (text.size() < 2 || text.front() != '{' || text.back() != '}') return false;
  if (text.size() == 2) return true;
  size_t i = 1;
  const size_t end = text.size() - 1;
  while (i < end) {
    std::string item;
    if (text[i] == '"') {
      ++i;
      while (i < end && text[i] != '"') {
        if (text[i] == '\\' && i + 1 < end) ++i;
        item += text[i++];
      }
      if (i >= end) return false;
      ++i;  // the closing quote
    } else {
      size_t start = i;
      while (i < end && text[i] != ',') ++i;
      item.assign(text.substr(start, i - start));
      if (item == "NULL") return false;  // depends_on never holds NULL
    }
    out->push_back(std::move(item));
    if (i < end) {
      if (text[i] != ',') return false;
      ++i;
    }
  }
  return true;
}

}  // namespace driftless::state::pg_detail
