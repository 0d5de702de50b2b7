#include "ws_frame.hpp"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <cstring>

namespace wsgate::bench::ws {

std::size_t client_header_size(std::size_t payload_len) {
    if (payload_len < 126) return 6;
    if (payload_len <= 0xFFFF) return 8;
    return 14;
}

std::size_t write_client_header(char* dst, opcode op, std::size_t payload_len) {
    auto* p = reinterpret_cast<std::uint8_t*>(dst);
    p[0] = static_cast<std::uint8_t>(0x80 | static_cast<std::uint8_t>(op));
    std::size_t n = 2;
    if (payload_len < 126) {
        p[1] = static_cast<std::uint8_t>(0x80 | payload_len);
    } else if (payload_len <= 0xFFFF) {
        p[1] = 0x80 | 126;
        p[2] = static_cast<std::uint8_t>(payload_len >> 8);
        p[3] = static_cast<std::uint8_t>(payload_len);
        n = 4;
    } else {
        p[1] = 0x80 | 127;
        for (int i = 0; i < 8; ++i) {
            p[2 + i] =
                static_cast<std::uint8_t>(static_cast<std::uint64_t>(payload_len) >> (8 * (7 - i)));
        }
        n = 10;
    }
    std::memcpy(p + n, mask_key.data(), mask_key.size());
    return n + mask_key.size();
}

void append_client_frame(std::string& out, opcode op, std::string_view payload) {
    const std::size_t start = out.size();
    const std::size_t header = client_header_size(payload.size());
    out.resize(start + header + payload.size());
    char* dst = out.data() + start;
    write_client_header(dst, op, payload.size());
    if (!payload.empty()) std::memcpy(dst + header, payload.data(), payload.size());
    apply_mask(dst + header, payload.size());
}

parse_status parse_header(const char* data, std::size_t avail, frame_header& h) {
    if (avail < 2) return parse_status::incomplete;
    const auto* p = reinterpret_cast<const std::uint8_t*>(data);
    if ((p[0] & 0x70) != 0) return parse_status::invalid;  // no extension negotiated
    h.fin = (p[0] & 0x80) != 0;
    h.op = static_cast<opcode>(p[0] & 0x0F);
    h.masked = (p[1] & 0x80) != 0;
    std::uint64_t len = p[1] & 0x7F;
    std::size_t n = 2;
    if (len == 126) {
        if (avail < 4) return parse_status::incomplete;
        len = (std::uint64_t{p[2]} << 8) | p[3];
        n = 4;
    } else if (len == 127) {
        if (avail < 10) return parse_status::incomplete;
        len = 0;
        for (int i = 0; i < 8; ++i) len = (len << 8) | p[2 + i];
        n = 10;
    }
    if (h.masked) {
        if (avail < n + 4) return parse_status::incomplete;
        std::memcpy(h.mask.data(), p + n, 4);
        n += 4;
    }
    h.header_len = n;
    h.payload_len = len;
    return parse_status::complete;
}

std::string accept_key(std::string_view key) {
    static constexpr std::string_view guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    std::string input;
    input.reserve(key.size() + guid.size());
    input.append(key).append(guid);
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
    unsigned char encoded[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
    const int n = EVP_EncodeBlock(encoded, digest, SHA_DIGEST_LENGTH);
    return std::string(reinterpret_cast<const char*>(encoded), static_cast<std::size_t>(n));
}

}  // namespace wsgate::bench::ws
