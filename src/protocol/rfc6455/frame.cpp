#include "protocol/rfc6455/frame.hpp"

#include "protocol/rfc6455/utf8.hpp"

#include <cstring>

namespace wsgate::protocol::rfc6455 {

bool is_valid_close_code(std::uint16_t code) noexcept {
    if (code >= 3000 && code <= 4999) return true;
    switch (code) {
        case 1000:
        case 1001:
        case 1002:
        case 1003:
        case 1007:
        case 1008:
        case 1009:
        case 1010:
        case 1011:
        case 1012:
        case 1013:
        case 1014:
            return true;
        default:
            return false;
    }
}

header_status parse_header(const std::uint8_t* data, std::size_t size, frame_header& out) noexcept {
    if (size < 2) return header_status::incomplete;
    const std::uint8_t b0 = data[0];
    const std::uint8_t b1 = data[1];
    out.fin = (b0 & 0x80) != 0;
    out.rsv = static_cast<std::uint8_t>((b0 >> 4) & 0x07);
    out.op = static_cast<opcode>(b0 & 0x0F);
    out.masked = (b1 & 0x80) != 0;
    std::size_t pos = 2;
    std::uint64_t len = b1 & 0x7F;
    if (len == 126) {
        if (size < 4) return header_status::incomplete;
        len = (std::uint64_t{data[2]} << 8) | data[3];
        if (len < 126) return header_status::invalid;
        pos = 4;
    } else if (len == 127) {
        if (size < 10) return header_status::incomplete;
        len = 0;
        for (int i = 0; i < 8; ++i) len = (len << 8) | data[2 + i];
        if (len <= 0xFFFF || (len >> 63) != 0) return header_status::invalid;
        pos = 10;
    }
    if (out.masked) {
        if (size < pos + 4) return header_status::incomplete;
        std::memcpy(&out.mask_key, data + pos, 4);
        pos += 4;
    } else {
        out.mask_key = 0;
    }
    out.payload_size = len;
    out.header_size = pos;
    return header_status::complete;
}

void apply_mask(std::uint8_t* data, std::size_t size, std::uint32_t mask_key,
                std::size_t phase) noexcept {
    std::uint8_t key[4];
    std::memcpy(key, &mask_key, 4);
    std::size_t i = 0;
    // Align the key to the phase, then XOR eight bytes at a time.
    std::uint8_t rotated[8];
    for (int k = 0; k < 8; ++k) rotated[k] = key[(phase + static_cast<std::size_t>(k)) & 3];
    std::uint64_t wide;
    std::memcpy(&wide, rotated, 8);
    for (; i + 8 <= size; i += 8) {
        std::uint64_t chunk;
        std::memcpy(&chunk, data + i, 8);
        chunk ^= wide;
        std::memcpy(data + i, &chunk, 8);
    }
    for (; i < size; ++i) data[i] ^= key[(phase + i) & 3];
}

std::size_t encode_header(std::uint8_t* out, opcode op, std::uint64_t payload_size,
                          bool fin) noexcept {
    out[0] = static_cast<std::uint8_t>((fin ? 0x80 : 0x00) | static_cast<std::uint8_t>(op));
    if (payload_size < 126) {
        out[1] = static_cast<std::uint8_t>(payload_size);
        return 2;
    }
    if (payload_size <= 0xFFFF) {
        out[1] = 126;
        out[2] = static_cast<std::uint8_t>(payload_size >> 8);
        out[3] = static_cast<std::uint8_t>(payload_size);
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; ++i)
        out[2 + i] = static_cast<std::uint8_t>(payload_size >> (56 - 8 * i));
    return 10;
}

void append_client_frame(std::string& out, opcode op, std::string_view payload,
                         std::uint32_t mask_key) {
    std::uint8_t header[max_header_size];
    std::size_t n = encode_header(header, op, payload.size());
    header[1] |= 0x80;
    std::memcpy(header + n, &mask_key, 4);
    n += 4;
    const std::size_t start = out.size();
    out.append(reinterpret_cast<const char*>(header), n);
    out.append(payload);
    apply_mask(reinterpret_cast<std::uint8_t*>(out.data() + start + n), payload.size(), mask_key);
}

std::string make_frame(opcode op, std::string_view payload) {
    std::uint8_t header[max_header_size];
    const std::size_t n = encode_header(header, op, payload.size());
    std::string frame;
    frame.reserve(n + payload.size());
    frame.append(reinterpret_cast<const char*>(header), n);
    frame.append(payload);
    return frame;
}

std::string make_close_frame(std::uint16_t code, std::string_view reason) {
    reason = utf8_prefix(reason, max_control_payload - 2);
    std::string payload;
    payload.push_back(static_cast<char>(code >> 8));
    payload.push_back(static_cast<char>(code & 0xFF));
    payload.append(reason);
    return make_frame(opcode::close, payload);
}

}  // namespace wsgate::protocol::rfc6455
