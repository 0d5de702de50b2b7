#pragma once

// The client side of RFC 6455 framing the load generator needs, on top of the project's codec
// (src/protocol/rfc6455). Every client frame uses one constant mask key (the server cannot
// tell; RFC 6455 wants unpredictable keys only to protect intermediaries from a hostile script).

#include "protocol/rfc6455/frame.hpp"
#include "protocol/rfc6455/handshake.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace wsgate::bench::ws {

namespace rfc = protocol::rfc6455;
using rfc::opcode;

inline constexpr std::uint32_t mask_key = 0x19a73c5a;  // bytes 5a 3c a7 19 on the wire

// XORs `len` bytes with the mask key; `payload_offset` is the position of data[0] in the payload.
inline void apply_mask(char* data, std::size_t len, std::size_t payload_offset = 0) {
    rfc::apply_mask(reinterpret_cast<std::uint8_t*>(data), len, mask_key, payload_offset & 3);
}

// Appends a complete masked client frame to `out`.
inline void append_client_frame(std::string& out, opcode op, std::string_view payload) {
    rfc::append_client_frame(out, op, payload, mask_key);
}

// The Sec-WebSocket-Key every connection sends; rfc::accept_key() gives the expected answer.
inline constexpr std::string_view client_key = "dGhlIHNhbXBsZSBub25jZQ==";

}  // namespace wsgate::bench::ws
