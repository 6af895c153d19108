#include "providers/postgres/scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <cstdlib>
#include <vector>

namespace driftless::providers::postgres {
namespace {

using Bytes = std::vector<unsigned char>;

bool Base64Decode(std::string_view in, Bytes* out) {
  if (in.empty() || in.size() % 4 != 0) return false;
  out->assign(in.size() / 4 * 3, 0);
  int n = EVP_DecodeBlock(out->data(), reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0) return false;
  size_t pad = 0;
  if (in.back() == '=') ++pad;
  if (in.size() > 1 && in[in.size() - 2] == '=') ++pad;
  out->resize(static_cast<size_t>(n) - pad);
  return true;
}

std::string Base64Encode(const Bytes& in) {
  std::string out(4 * ((in.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), in.data(),
                          static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Bytes Hmac(const Bytes& key, std::string_view data) {
  Bytes out(EVP_MAX_MD_SIZE);
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(), &len);
  out.resize(len);
  return out;
}

// StoredKey and ServerKey of `password` under `salt` and `iterations`.
bool Keys(std::string_view password, const Bytes& salt, int iterations, Bytes* stored_key,
          Bytes* server_key) {
  Bytes salted(SHA256_DIGEST_LENGTH);
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), salt.data(),
                        static_cast<int>(salt.size()), iterations, EVP_sha256(),
                        static_cast<int>(salted.size()), salted.data()) != 1) {
    return false;
  }
  Bytes client_key = Hmac(salted, "Client Key");
  stored_key->assign(SHA256_DIGEST_LENGTH, 0);
  SHA256(client_key.data(), client_key.size(), stored_key->data());
  *server_key = Hmac(salted, "Server Key");
  OPENSSL_cleanse(salted.data(), salted.size());
  OPENSSL_cleanse(client_key.data(), client_key.size());
  return true;
}

}  // namespace

bool ScramVerify(std::string_view password, std::string_view verifier) {
  constexpr std::string_view kPrefix = "SCRAM-SHA-256$";
  if (verifier.substr(0, kPrefix.size()) != kPrefix) return false;
  verifier.remove_prefix(kPrefix.size());
  size_t colon = verifier.find(':');
  size_t dollar = verifier.find('$');
  if (colon == std::string_view::npos || dollar == std::string_view::npos || dollar < colon)
    return false;
  std::string iter_text(verifier.substr(0, colon));
  char* end = nullptr;
  long iterations = std::strtol(iter_text.c_str(), &end, 10);
  if (iter_text.empty() || *end != '\0' || iterations < 1 || iterations > 100000000) return false;
  std::string_view salt_b64 = verifier.substr(colon + 1, dollar - colon - 1);
  std::string_view keys = verifier.substr(dollar + 1);
  size_t key_colon = keys.find(':');
  if (key_colon == std::string_view::npos) return false;
  Bytes salt, want_stored, want_server;
  if (!Base64Decode(salt_b64, &salt) || !Base64Decode(keys.substr(0, key_colon), &want_stored) ||
      !Base64Decode(keys.substr(key_colon + 1), &want_server)) {
    return false;
  }
  Bytes stored, server;
  if (!Keys(password, salt, static_cast<int>(iterations), &stored, &server)) return false;
  return stored.size() == want_stored.size() && server.size() == want_server.size() &&
         CRYPTO_memcmp(stored.data(), want_stored.data(), stored.size()) == 0 &&
         CRYPTO_memcmp(server.data(), want_server.data(), server.size()) == 0;
}

Result<std::string> ScramVerifier(std::string_view password, std::string_view salt,
                                  int iterations) {
  Bytes salt_bytes(salt.begin(), salt.end());
  Bytes stored, server;
  if (!Keys(password, salt_bytes, iterations, &stored, &server)) return MakeError("PBKDF2 failed");
  return "SCRAM-SHA-256$" + std::to_string(iterations) + ":" + Base64Encode(salt_bytes) + "$" +
         Base64Encode(stored) + ":" + Base64Encode(server);
}

}  // namespace driftless::providers::postgres
