#include "providers/postgres/connection.h"

#include <libpq-fe.h>

#include <cstdlib>

#include "base/strings.h"
#include "providers/postgres/quote.h"

namespace driftless::providers::postgres {

Connection::~Connection() { PQfinish(c_); }

bool Connection::healthy() const { return PQstatus(c_) == CONNECTION_OK; }

Error Connection::Failed(const std::string& what, void* result) {
  auto* r = static_cast<PGresult*>(result);
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  sqlstate_ = state ? state : "";
  std::string message = r ? PQresultErrorMessage(r) : PQerrorMessage(c_);
  if (message.empty()) message = PQerrorMessage(c_);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  if (r) PQclear(r);
  return MakeError(MaskSecret(what + message, secret_));
}

Status Connection::Exec(const std::string& sql) {
  PGresult* r = PQexec(c_, sql.c_str());
  ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return Failed("", r);
  PQclear(r);
  sqlstate_.clear();
  return Status::Ok();
}

Result<std::vector<value::Value>> Connection::QueryJson(const std::string& sql,
                                                        const std::vector<std::string>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p.c_str());
  PGresult* r = PQexecParams(c_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                             values.data(), nullptr, nullptr, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) return Failed("", r);
  std::vector<value::Value> out;
  int rows = PQntuples(r);
  out.reserve(static_cast<size_t>(rows));
  for (int i = 0; i < rows; ++i) {
    if (PQgetisnull(r, i, 0)) {
      out.push_back(value::Value::Null());
      continue;
    }
    Result<value::Value> v = value::ParseJson(PQgetvalue(r, i, 0));
    if (!v.ok()) {
      PQclear(r);
      return MakeError("internal error: the server's answer is not JSON: " + v.error().message);
    }
    out.push_back(std::move(*v));
  }
  PQclear(r);
  sqlstate_.clear();
  return out;
}

Result<std::optional<value::Value>> Connection::QueryOneJson(
    const std::string& sql, const std::vector<std::string>& params) {
  Result<std::vector<value::Value>> rows = QueryJson(sql, params);
  if (!rows.ok()) return rows.error();
  if (rows->empty()) return std::optional<value::Value>();
  return std::optional<value::Value>(std::move(rows->front()));
}

Lease::~Lease() {
  if (pool_ != nullptr && c_ != nullptr) pool_->Put(db_, std::move(c_));
}

Pool::~Pool() = default;

Result<std::unique_ptr<Connection>> Pool::Connect(const std::string& db) const {
  // The connection string is expanded from the first `dbname`; a second one, when given,
  // names the database.
  const char* keys[] = {"dbname", "dbname", "fallback_application_name", nullptr};
  const char* values[] = {dsn_.c_str(), db.empty() ? nullptr : db.c_str(), "driftless", nullptr};
  if (db.empty()) {
    keys[1] = "fallback_application_name";
    values[1] = "driftless";
    keys[2] = nullptr;
    values[2] = nullptr;
  }
  PGconn* c = PQconnectdbParams(keys, values, 1);
  if (c == nullptr) return MakeError("out of memory connecting to PostgreSQL");
  // The server's notices ("drop cascades to ...") are not for the user's terminal.
  PQsetNoticeProcessor(
      c, [](void*, const char*) {}, nullptr);
  auto conn = std::make_unique<Connection>(c, secret_);
  if (PQstatus(c) != CONNECTION_OK) {
    std::string message = PQerrorMessage(c);
    while (!message.empty() && (message.back() == '\n' || message.back() == ' '))
      message.pop_back();
    return MakeError("cannot connect to PostgreSQL" +
                     (db.empty() ? std::string() : " database " + Quote(db)) + ": " +
                     MaskSecret(message, secret_));
  }
  return conn;
}

const std::string& Pool::Key(const std::string& db) const {
  static const std::string kOwn;
  return db == own_db_ ? kOwn : db;
}

Result<Lease> Pool::Get(const std::string& name) {
  const std::string& db = Key(name);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = idle_.find(db);
    while (it != idle_.end() && !it->second.empty()) {
      std::unique_ptr<Connection> c = std::move(it->second.back());
      it->second.pop_back();
      if (c->healthy()) return Lease(this, db, std::move(c));
    }
  }
  Result<std::unique_ptr<Connection>> c = Connect(db);
  if (!c.ok()) return c.error();
  return Lease(this, db, std::move(*c));
}

void Pool::Put(const std::string& db, std::unique_ptr<Connection> c) {
  if (!c->healthy()) return;
  // A connection left inside a failed transaction is not reused.
  if (PQtransactionStatus(c->get()) != PQTRANS_IDLE) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto& list = idle_[Key(db)];
  if (list.size() < 8) list.push_back(std::move(c));
}

void Pool::Forget(const std::string& db) {
  std::lock_guard<std::mutex> lock(mu_);
  idle_.erase(Key(db));
}

Result<DsnParts> ParseDsn(const std::string& dsn) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(dsn.c_str(), &err);
  if (opts == nullptr) {
    // libpq's message may quote a piece of the string, which may be the password: not shown.
    if (err != nullptr) PQfreemem(err);
    return MakeError(
        "dsn is not a valid libpq connection string (\"host=... dbname=...\") or URI "
        "(postgresql://...); the details are not shown because it may hold a password");
  }
  DsnParts parts;
  for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    std::string k = o->keyword;
    if (k == "dbname") parts.dbname = o->val;
    if (k == "user") parts.user = o->val;
    if (k == "host") parts.host = o->val;
    if (k == "port") parts.port = o->val;
    if (k == "password") parts.password = o->val;
  }
  PQconninfoFree(opts);
  if (parts.user.empty()) {
    if (const char* u = std::getenv("PGUSER")) parts.user = u;
  }
  if (parts.dbname.empty()) {
    if (const char* d = std::getenv("PGDATABASE")) parts.dbname = d;
  }
  if (parts.dbname.empty()) parts.dbname = parts.user;
  if (parts.dbname.empty()) parts.dbname = "postgres";
  return parts;
}

}  // namespace driftless::providers::postgres
