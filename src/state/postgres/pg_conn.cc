#include "state/postgres/pg_conn.h"

#include <poll.h>

#include <cstdlib>
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

Connection::~Connection() {
  if (conn_ != nullptr) PQfinish(conn_);
}

Result<std::unique_ptr<Connection>> Connection::Open(const std::string& location,
                                                     const std::string& shown,
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
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string reason = OneLine(PQerrorMessage(conn));
    PQfinish(conn);
    return MakeError("cannot connect to state " + shown + ": " + reason);
  }
  std::unique_ptr<Connection> c(new Connection(conn, shown));
  // Quiet NOTICEs ("schema already exists, skipping"): they would go to stderr.
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  // A session frozen inside one of our (short) transactions would keep its row locks, and with
  // them the environment's lock row, until the server noticed; this ends it sooner.
  Status set =
      c->Script("SET idle_in_transaction_session_timeout = '30s'", "configure the session");
  if (!set.ok()) return set.error();
  return c;
}

Error Connection::Fail(std::string_view what, std::string_view reason) const {
  return MakeError("cannot " + std::string(what) + " in state " + shown_ + ": " +
                   std::string(reason));
}

void Connection::ResetIfBroken() {
  if (PQstatus(conn_) == CONNECTION_OK) return;
  PQreset(conn_);
  prepared_.clear();  // prepared statements die with the session
}

Result<Rows> Connection::Exec(std::string_view sql, const Params& params, std::string_view what) {
  last_sqlstate_.clear();
  if (!in_transaction_) ResetIfBroken();
  std::string key(sql);
  auto it = prepared_.find(key);
  if (it == prepared_.end()) {
    std::string name = "dl" + std::to_string(prepared_.size() + 1);
    PGresult* prep = PQprepare(conn_, name.c_str(), key.c_str(), 0, nullptr);
    Rows prepared(prep);
    if (prep == nullptr || PQresultStatus(prep) != PGRES_COMMAND_OK) {
      if (prep != nullptr) {
        const char* state = PQresultErrorField(prep, PG_DIAG_SQLSTATE);
        last_sqlstate_ = state != nullptr ? state : "";
      }
      return Fail(what,
                  OneLine(prep != nullptr ? PQresultErrorMessage(prep) : PQerrorMessage(conn_)));
    }
    it = prepared_.emplace(std::move(key), std::move(name)).first;
  }
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& v : params.values()) values.push_back(v ? v->c_str() : nullptr);
  PGresult* r = PQexecPrepared(conn_, it->second.c_str(), static_cast<int>(values.size()),
                               values.data(), nullptr, nullptr, 0);
  Rows rows(r);
  if (Status ok = CheckResult(r, what); !ok.ok()) return ok.error();
  return rows;
}

Status Connection::CheckResult(const PGresult* r, std::string_view what) {
  if (r == nullptr) return Fail(what, OneLine(PQerrorMessage(conn_)));
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
  if (!in_transaction_) ResetIfBroken();
  PGresult* r = PQexec(conn_, sql.c_str());
  Rows rows(r);
  return CheckResult(r, what);
}

Result<bool> Connection::WaitForNotification(int timeout_ms) {
  auto drain = [this] {
    bool got = false;
    while (PGnotify* n = PQnotifies(conn_)) {
      got = true;
      PQfreemem(n);
    }
    return got;
  };
  if (PQconsumeInput(conn_) == 0) return Fail("wait for a lock", OneLine(PQerrorMessage(conn_)));
  if (drain()) return true;
  pollfd fd{};
  fd.fd = PQsocket(conn_);
  fd.events = POLLIN;
  if (fd.fd < 0) return Fail("wait for a lock", "the connection is closed");
  int ready = poll(&fd, 1, timeout_ms);
  if (ready <= 0) return false;  // timed out (or interrupted: the caller looks again anyway)
  if (PQconsumeInput(conn_) == 0) return Fail("wait for a lock", OneLine(PQerrorMessage(conn_)));
  return drain();
}

Result<Transaction> Transaction::Write(Connection& c, std::string_view what) {
  Status s = c.Script("BEGIN ISOLATION LEVEL READ COMMITTED", what);
  if (!s.ok()) return s.error();
  c.in_transaction_ = true;
  return Transaction(&c);
}

Result<Transaction> Transaction::Read(Connection& c, std::string_view what) {
  Status s = c.Script("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", what);
  if (!s.ok()) return s.error();
  c.in_transaction_ = true;
  return Transaction(&c);
}

Transaction::~Transaction() {
  if (c_ == nullptr) return;
  // A failed statement already aborted it; ROLLBACK ends the transaction either way.
  PGresult* r = PQexec(c_->handle(), "ROLLBACK");
  if (r != nullptr) PQclear(r);
  c_->in_transaction_ = false;
}

Status Transaction::Commit(std::string_view what) {
  Connection* c = c_;
  c_ = nullptr;
  c->in_transaction_ = false;  // whatever COMMIT answers, the transaction is over
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
