#pragma once

#include <string>
#include <string_view>

#include "base/result.h"

namespace driftless::auth {

/// What every token starts with, so that a leaked one is recognisable (secret scanners).
inline constexpr std::string_view kTokenPrefix = "dl_";
/// The random part of a token, in bytes (43 characters of base64url without padding).
inline constexpr size_t kSecretBytes = 32;

/// A new token: the text given to the user once, and what state keeps of it.
struct GeneratedToken {
  std::string text;  ///< "dl_" + base64url(secret)
  std::string hash;  ///< lowercase hex SHA-256 of the 32 secret bytes
};

/// A fresh token from OpenSSL's random generator; an error when it has no entropy.
Result<GeneratedToken> GenerateToken();

/// The hash of a token's secret (what state is searched by), or an error saying why `text` is
/// not a driftless token (never echoing it). Surrounding whitespace is not accepted: the caller
/// trims what it read from a file or a header.
Result<std::string> HashToken(std::string_view text);

/// True when `a` and `b` are equal, in time that depends only on their lengths.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

/// base64url without padding (RFC 4648 section 5).
std::string Base64UrlEncode(std::string_view bytes);
/// The bytes of unpadded base64url text; false when it is not (wrong characters, bad length,
/// or non-zero bits past the last byte: every value has exactly one encoding).
bool Base64UrlDecode(std::string_view text, std::string* out);

}  // namespace driftless::auth
