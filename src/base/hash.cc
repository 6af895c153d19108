#include "base/hash.h"

// The one-shot SHA-256 functions (SHA256_Init and the rest) are deprecated in OpenSSL 3 in favour
// of EVP, but EVP's first fetch loads the default provider and its name tables: about 2 MB more
// of libcrypto resident in every process and thousands of instructions per small digest. The
// low-level functions run the same assembly (SHA-NI where the CPU has it) without either.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
#include <sys/random.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>

namespace driftless {
namespace {

static_assert(sizeof(SHA256_CTX) <= 128, "Sha256's storage is too small for SHA256_CTX");

std::string ToHex(const unsigned char* data, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 15];
  }
  return out;
}

void Digest(std::string_view data, unsigned char* md) {
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  SHA256_Update(&ctx, data.data(), data.size());
  SHA256_Final(md, &ctx);
}

}  // namespace

Sha256::Sha256() { SHA256_Init(new (ctx_) SHA256_CTX); }

Sha256::~Sha256() = default;  // SHA256_CTX holds no resources

void Sha256::Update(std::string_view data) {
  SHA256_Update(reinterpret_cast<SHA256_CTX*>(ctx_), data.data(), data.size());
}

std::string Sha256::HexDigest() {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256_Final(md, reinterpret_cast<SHA256_CTX*>(ctx_));
  return ToHex(md, sizeof md);
}

std::string Sha256Hex(std::string_view data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  Digest(data, md);
  return ToHex(md, sizeof md);
}

// RFC 2104 over SHA-256 (block of 64 bytes); checked against RFC 4231's vectors in hash_test.
std::string HmacSha256Hex(std::string_view key, std::string_view data) {
  constexpr size_t kBlock = 64;
  unsigned char k[kBlock] = {};
  if (key.size() > kBlock) {
    Digest(key, k);
  } else {
    std::memcpy(k, key.data(), key.size());
  }
  unsigned char pad[kBlock];
  unsigned char inner[SHA256_DIGEST_LENGTH];
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256_CTX ctx;
  for (size_t i = 0; i < kBlock; ++i) pad[i] = k[i] ^ 0x36;
  SHA256_Init(&ctx);
  SHA256_Update(&ctx, pad, kBlock);
  SHA256_Update(&ctx, data.data(), data.size());
  SHA256_Final(inner, &ctx);
  for (size_t i = 0; i < kBlock; ++i) pad[i] = k[i] ^ 0x5c;
  SHA256_Init(&ctx);
  SHA256_Update(&ctx, pad, kBlock);
  SHA256_Update(&ctx, inner, sizeof inner);
  SHA256_Final(md, &ctx);
  return ToHex(md, sizeof md);
}

uint64_t Fnv1a64(std::string_view data, uint64_t seed) {
  uint64_t h = seed;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::string RandomHex(size_t n) {
  std::string bytes(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom(bytes.data() + got, n - got, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      std::abort();  // no random source: nothing sensible to do
    }
    got += static_cast<size_t>(r);
  }
  return ToHex(reinterpret_cast<const unsigned char*>(bytes.data()), n);
}

}  // namespace driftless
