#pragma once
// RFC 6455 framing: header parsing, unmasking, and server-side (unmasked) frame encoding.
// Pure functions on byte ranges: no I/O, no allocation except where a std::string is returned.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace wsgate::protocol::rfc6455 {

enum class opcode : std::uint8_t {
    continuation = 0x0,
    text = 0x1,
    binary = 0x2,
    close = 0x8,
    ping = 0x9,
    pong = 0xA,
};

inline constexpr bool is_control(opcode op) noexcept {
    return (static_cast<std::uint8_t>(op) & 0x8) != 0;
}

// Close status codes the node sends (docs/protocol.md, "Close codes").
namespace close_code {
inline constexpr std::uint16_t normal = 1000;
inline constexpr std::uint16_t going_away = 1001;
inline constexpr std::uint16_t protocol_error = 1002;
inline constexpr std::uint16_t no_status = 1005;  // never sent on the wire
inline constexpr std::uint16_t invalid_payload = 1007;
inline constexpr std::uint16_t policy_violation = 1008;
inline constexpr std::uint16_t message_too_big = 1009;
inline constexpr std::uint16_t internal_error = 1011;
inline constexpr std::uint16_t auth_timeout = 4001;
inline constexpr std::uint16_t slow_consumer = 4002;
inline constexpr std::uint16_t idle_timeout = 4003;
}  // namespace close_code

// True for a status code a peer may put in a close frame (RFC 6455 section 7.4).
bool is_valid_close_code(std::uint16_t code) noexcept;

inline constexpr std::size_t max_header_size = 14;  // 2 + 8 (length) + 4 (mask)
inline constexpr std::size_t max_control_payload = 125;

struct frame_header {
    bool fin = false;
    std::uint8_t rsv = 0;  // the three reserved bits, as bits 2..0
    opcode op = opcode::continuation;
    bool masked = false;
    std::uint32_t mask_key = 0;  // in wire byte order, as memcpy'd from the frame
    std::uint64_t payload_size = 0;
    std::size_t header_size = 0;
};

enum class header_status { complete, incomplete, invalid };

// Parses the frame header at the start of [data, data + size). On `complete`, `out` holds the
// header and out.header_size how many bytes it took. `invalid` only for a length field that is
// not minimally encoded or has the top bit set; semantic checks (masking, opcodes) are the
// caller's, so the same parser serves tests that inspect bad frames.
header_status parse_header(const std::uint8_t* data, std::size_t size, frame_header& out) noexcept;

// XORs `size` bytes with the 4-byte mask, starting at `phase` bytes into the mask cycle.
void apply_mask(std::uint8_t* data, std::size_t size, std::uint32_t mask_key,
                std::size_t phase = 0) noexcept;

// Writes an unmasked server frame header for a payload of `payload_size` bytes into `out`
// (at least max_header_size bytes) and returns its length (2, 4 or 10).
std::size_t encode_header(std::uint8_t* out, opcode op, std::uint64_t payload_size,
                          bool fin = true) noexcept;

// Header length encode_header() will produce for this payload size.
constexpr std::size_t header_size_for(std::uint64_t payload_size) noexcept {
    return payload_size < 126 ? 2 : payload_size <= 0xFFFF ? 4 : 10;
}

// Client side (test clients, the load generator): a masked frame with FIN set, appended to
// `out`. `mask_key` is in wire byte order, as parse_header() reports it.
void append_client_frame(std::string& out, opcode op, std::string_view payload,
                         std::uint32_t mask_key);

// A complete unmasked frame: header followed by the payload.
std::string make_frame(opcode op, std::string_view payload);

// A close frame with a status code and a reason (truncated to fit 125 bytes).
std::string make_close_frame(std::uint16_t code, std::string_view reason);

}  // namespace wsgate::protocol::rfc6455
