#include "protocol/rfc6455/handshake.hpp"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <string>

namespace wsgate::protocol::rfc6455 {

namespace {
constexpr std::string_view websocket_guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
}

std::string accept_key(std::string_view client_key) {
    std::string input;
    input.reserve(client_key.size() + websocket_guid.size());
    input.append(client_key).append(websocket_guid);
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
    unsigned char encoded[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
    const int n = EVP_EncodeBlock(encoded, digest, SHA_DIGEST_LENGTH);
    return std::string(reinterpret_cast<const char*>(encoded), static_cast<std::size_t>(n));
}

bool is_valid_client_key(std::string_view client_key) noexcept {
    if (client_key.size() != 24 || client_key.substr(22) != "==") return false;
    // EVP_DecodeBlock does not check where '=' appears: only the final two may be padding.
    for (char c : client_key.substr(0, 22)) {
        const bool base64 = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '+' || c == '/';
        if (!base64) return false;
    }
    unsigned char decoded[18];
    return EVP_DecodeBlock(decoded, reinterpret_cast<const unsigned char*>(client_key.data()),
                           24) == 18;
}

}  // namespace wsgate::protocol::rfc6455
