#pragma once
// Verifies bearer JWTs (HS256 with a shared secret, or RS256 with an RSA public key) with
// libjwt; docs/adr/0002-jwt-with-libjwt.md says what is checked and in what order.
//
// Thread safety: immutable after construction. authenticate() keeps no shared mutable state
// (every libjwt object lives for one call), so one instance serves every shard thread.

#include "core/authenticator.hpp"

#include <chrono>
#include <string>
#include <string_view>

namespace wsgate::auth {

struct jwt_config {
    // Exactly one of the two must be set.
    std::string hs256_secret;
    std::string rs256_public_key_pem;  // "-----BEGIN PUBLIC KEY-----" (SubjectPublicKeyInfo)
    // Clock skew tolerated on exp and nbf.
    std::chrono::seconds leeway{30};
};

class jwt_authenticator final : public core::authenticator {
public:
    // Throws std::invalid_argument when neither or both of secret / key are set, when the
    // PEM is not an RSA public key, or when the leeway is negative (start-up errors).
    explicit jwt_authenticator(jwt_config config);

    core::result<core::identity> authenticate(
        std::string_view token, std::chrono::system_clock::time_point now) const override;

    // The whole content of a key file (e.g. JWT_PUBLIC_KEY_FILE). Throws std::runtime_error
    // naming the path when it cannot be read or is empty.
    static std::string read_key_file(const std::string& path);

private:
    enum class algorithm { hs256, rs256 };

    algorithm algorithm_;
    std::string key_;  // the HS256 secret or the RS256 public key PEM
    std::chrono::seconds leeway_;
};

}  // namespace wsgate::auth
