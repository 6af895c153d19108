#pragma once

// The test PostgreSQL server (scripts/pg-test-server.sh, started by ctest as the `postgres`
// fixture for tests declared with POSTGRES): its connection string and fresh databases on it.
// A test that needs the server fails (never skips) when it is not there.

#include <string>

namespace driftless::test {

/// The libpq connection string (key=value form) of the test server's `postgres` database, read
/// from $DRIFTLESS_TEST_PG_DIR/dsn; "" (and a test failure recorded) when there is none.
std::string TestServerDsn();

/// The same connection string with `dbname` replaced (or added).
std::string WithDatabase(const std::string& dsn, const std::string& dbname);

/// A name unique to this process and call ("<prefix>_<pid>_<n>"), for databases and roles:
/// tests run in parallel against one server.
std::string UniqueName(const std::string& prefix);

/// The same connection as a postgresql:// URI (what `--state` takes), e.g.
/// "postgresql:///db?host=/run/sock&port=5432&user=postgres" for a server on a unix socket.
std::string ToUri(const std::string& dsn);

/// Creates a new empty database with a unique name and returns its connection string; "" (and a
/// test failure recorded) when it cannot.
std::string CreateTestDatabase(const std::string& prefix);

/// Runs `sql` on `dsn` (several statements allowed); returns "" or the server's error message.
std::string Execute(const std::string& dsn, const std::string& sql);

/// The first column of the first row of `sql` on `dsn`, or "<error: ...>", or "<null>", or
/// "<no rows>".
std::string QueryValue(const std::string& dsn, const std::string& sql);

}  // namespace driftless::test
