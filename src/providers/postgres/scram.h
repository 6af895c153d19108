#pragma once

#include <string>
#include <string_view>

#include "base/result.h"

// SCRAM-SHA-256 password verifiers as PostgreSQL stores them in pg_authid.rolpassword:
//   SCRAM-SHA-256$<iterations>:<salt, base64>$<StoredKey, base64>:<ServerKey, base64>
// (RFC 5802 / RFC 7677). A declared password is compared with the stored verifier, so that a
// password changed by hand is drift, without driftless keeping the password anywhere.

namespace driftless::providers::postgres {

/// True when `verifier` is a SCRAM-SHA-256 verifier made from `password` (the password's bytes
/// as they are: PostgreSQL's SASLprep changes only passwords with non-ASCII characters that
/// NFKC normalisation changes). False for anything else, an MD5 hash or a malformed verifier
/// included.
bool ScramVerify(std::string_view password, std::string_view verifier);

/// A verifier for `password` with a `salt` (raw bytes) and `iterations`, as PostgreSQL would
/// store it. For tests; the provider sets passwords with libpq's PQencryptPasswordConn.
Result<std::string> ScramVerifier(std::string_view password, std::string_view salt, int iterations);

}  // namespace driftless::providers::postgres
