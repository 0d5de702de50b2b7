#pragma once
// How a connection proves who it is. Implementations live in src/auth/.
//
// Thread safety: one authenticator is shared by every shard thread; authenticate() is const
// and must be safe to call concurrently.

#include "core/error.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace wsgate::core {

struct identity {
    std::string user_id;
    // When the credential stops being valid, if it says (JWT "exp").
    std::optional<std::chrono::system_clock::time_point> expires_at;
};

class authenticator {
public:
    virtual ~authenticator() = default;

    // Verifies a bearer token (a JWT). Errors are core::error values: token_malformed,
    // token_signature_invalid, token_algorithm_not_allowed, token_expired,
    // token_not_yet_valid, token_subject_missing, token_missing (empty token).
    virtual result<identity> authenticate(std::string_view token,
                                          std::chrono::system_clock::time_point now) const = 0;
};

}  // namespace wsgate::core
