#pragma once

#include <string>
#include <string_view>

// SQL text built by the postgres provider: every identifier a user wrote is quoted, every value
// is a parameter or a quoted literal. Nothing a user writes reaches the server unquoted.

namespace driftless::providers::postgres {

/// `name` as a quoted SQL identifier: "name", with every `"` doubled. The caller has refused
/// names that hold a NUL byte (Normalize does), which PostgreSQL cannot store.
std::string QuoteIdent(std::string_view name);

/// `text` as a SQL string literal that means the same whatever standard_conforming_strings
/// says: 'text' with every `'` doubled, or E'...' with `\` doubled too when it holds a backslash.
std::string QuoteLiteral(std::string_view text);

/// `message` with every occurrence of `secret` replaced by "(sensitive)" (nothing when `secret`
/// is empty): for errors that may quote a connection string's password.
std::string MaskSecret(std::string message, std::string_view secret);

/// Why `name` cannot name a PostgreSQL object ("" when it can): empty, a NUL byte, or longer
/// than the 63 bytes PostgreSQL keeps (it would silently cut it).
std::string CheckName(std::string_view name);

}  // namespace driftless::providers::postgres
