#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace driftless {

/// Incremental SHA-256.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::string_view data);
  /// Finishes and returns the lowercase hex digest; the object cannot be reused.
  std::string HexDigest();

 private:
  alignas(8) unsigned char ctx_[128];  ///< OpenSSL's SHA256_CTX, kept out of this header
};

/// Lowercase hex SHA-256 of data.
std::string Sha256Hex(std::string_view data);

/// Lowercase hex HMAC-SHA256 of data under key.
std::string HmacSha256Hex(std::string_view key, std::string_view data);

/// A fast non-cryptographic 64-bit hash (FNV-1a), for in-memory change detection only.
uint64_t Fnv1a64(std::string_view data, uint64_t seed = 1469598103934665603ULL);

/// `n` random bytes as lowercase hex, from the OS random source.
std::string RandomHex(size_t n);

}  // namespace driftless
