#pragma once

#include <string>
#include <string_view>

namespace wsgate::protocol::rfc6455 {

// Sec-WebSocket-Accept for a client's Sec-WebSocket-Key (RFC 6455 section 4.2.2).
std::string accept_key(std::string_view client_key);

// True if the key is a base64 encoding of 16 bytes, as RFC 6455 requires.
bool is_valid_client_key(std::string_view client_key) noexcept;

}  // namespace wsgate::protocol::rfc6455
