#include "support/postgres.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace driftless::test {

std::string TestServerDsn() {
  const char* dir = std::getenv("DRIFTLESS_TEST_PG_DIR");
  if (dir == nullptr || *dir == '\0') {
    ADD_FAILURE() << "DRIFTLESS_TEST_PG_DIR is not set: run this test through ctest, which starts "
                     "the test PostgreSQL server (scripts/pg-test-server.sh)";
    return "";
  }
  std::ifstream in(std::string(dir) + "/dsn");
  std::string dsn;
  if (!in || !std::getline(in, dsn) || dsn.empty()) {
    ADD_FAILURE() << "no test PostgreSQL server: " << dir << "/dsn is missing (start it with "
                  << "scripts/pg-test-server.sh start " << dir << ")";
    return "";
  }
  return dsn;
}

std::string WithDatabase(const std::string& dsn, const std::string& dbname) {
  std::istringstream in(dsn);
  std::string out, word;
  while (in >> word) {
    if (word.rfind("dbname=", 0) == 0) continue;
    out += word + " ";
  }
  return out + "dbname=" + dbname;
}

std::string ToUri(const std::string& dsn) {
  std::istringstream in(dsn);
  std::string word, dbname, query;
  while (in >> word) {
    size_t eq = word.find('=');
    if (eq == std::string::npos) continue;
    std::string key = word.substr(0, eq), value = word.substr(eq + 1);
    if (key == "dbname") {
      dbname = value;
    } else {
      query += (query.empty() ? "?" : "&") + key + "=" + value;
    }
  }
  return "postgresql:///" + dbname + query;
}

std::string UniqueName(const std::string& prefix) {
  static std::atomic<int> counter{0};
  return prefix + "_" + std::to_string(getpid()) + "_" + std::to_string(++counter);
}

std::string Execute(const std::string& dsn, const std::string& sql) {
  PGconn* c = PQconnectdb(dsn.c_str());
  std::string error;
  if (PQstatus(c) != CONNECTION_OK) {
    error = PQerrorMessage(c);
  } else {
    PGresult* r = PQexec(c, sql.c_str());
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) error = PQresultErrorMessage(r);
    PQclear(r);
  }
  PQfinish(c);
  return error;
}

std::string QueryValue(const std::string& dsn, const std::string& sql) {
  PGconn* c = PQconnectdb(dsn.c_str());
  std::string value;
  if (PQstatus(c) != CONNECTION_OK) {
    value = std::string("<error: ") + PQerrorMessage(c) + ">";
  } else {
    PGresult* r = PQexec(c, sql.c_str());
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
      value = std::string("<error: ") + PQresultErrorMessage(r) + ">";
    } else if (PQntuples(r) == 0) {
      value = "<no rows>";
    } else if (PQgetisnull(r, 0, 0)) {
      value = "<null>";
    } else {
      value = PQgetvalue(r, 0, 0);
    }
    PQclear(r);
  }
  PQfinish(c);
  return value;
}

std::string CreateTestDatabase(const std::string& prefix) {
  std::string server = TestServerDsn();
  if (server.empty()) return "";
  std::string name = UniqueName(prefix);
  // The name is made here of [a-z0-9_]: no quoting needed beyond the identifier's quotes.
  if (std::string err = Execute(server, "CREATE DATABASE \"" + name + "\""); !err.empty()) {
    ADD_FAILURE() << "cannot create test database " << name << ": " << err;
    return "";
  }
  return WithDatabase(server, name);
}

}  // namespace driftless::test
