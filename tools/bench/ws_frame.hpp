#pragma once

// The client side of RFC 6455 framing, as little as a load generator needs: masked client
// frames out, unmasked server frame headers in, and the opening handshake's accept key.
// Every client frame uses one constant mask key (the server cannot tell; RFC 6455 wants
// unpredictable keys only to protect intermediaries from a hostile script).

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace wsgate::bench::ws {

enum class opcode : std::uint8_t {
    continuation = 0x0,
    text = 0x1,
    binary = 0x2,
    close = 0x8,
    ping = 0x9,
    pong = 0xA,
};

inline constexpr std::array<std::uint8_t, 4> mask_key{0x5a, 0x3c, 0xa7, 0x19};

// Bytes of the header of a masked client frame carrying `payload_len` bytes (6, 8 or 14).
std::size_t client_header_size(std::size_t payload_len);

// Writes a masked client frame header (FIN set) to `dst`, which has room for
// client_header_size(payload_len) bytes; returns the bytes written.
std::size_t write_client_header(char* dst, opcode op, std::size_t payload_len);

// XORs `len` bytes with the mask key; `payload_offset` is the position of data[0] in the payload.
inline void apply_mask(char* data, std::size_t len, std::size_t payload_offset = 0) {
    for (std::size_t i = 0; i < len; ++i) {
        data[i] = static_cast<char>(static_cast<std::uint8_t>(data[i]) ^
                                    mask_key[(payload_offset + i) & 3]);
    }
}

// Appends a complete masked client frame to `out`.
void append_client_frame(std::string& out, opcode op, std::string_view payload);

struct frame_header {
    bool fin = false;
    opcode op = opcode::continuation;
    bool masked = false;
    std::array<std::uint8_t, 4> mask{};
    std::size_t header_len = 0;
    std::uint64_t payload_len = 0;
};

enum class parse_status { complete, incomplete, invalid };

// Parses a frame header from the first `avail` bytes. `complete` means the header is whole;
// the payload may still be short of `payload_len`.
parse_status parse_header(const char* data, std::size_t avail, frame_header& h);

// The Sec-WebSocket-Key every connection sends, and the Sec-WebSocket-Accept it expects back.
inline constexpr std::string_view client_key = "dGhlIHNhbXBsZSBub25jZQ==";
std::string accept_key(std::string_view key);

}  // namespace wsgate::bench::ws
