#include "protocol/rfc6455/message_reader.hpp"

#include "protocol/rfc6455/utf8.hpp"

namespace wsgate::protocol::rfc6455 {

namespace {

read_failure fail(std::uint16_t code, std::string_view reason) {
    return {code, reason};
}

bool is_known_opcode(opcode op) noexcept {
    switch (op) {
        case opcode::continuation:
        case opcode::text:
        case opcode::binary:
        case opcode::close:
        case opcode::ping:
        case opcode::pong:
            return true;
    }
    return false;
}

}  // namespace

read_failure message_reader::check(const frame_header& h) const noexcept {
    if (h.rsv != 0) return fail(close_code::protocol_error, "reserved bits set");
    if (!h.masked) return fail(close_code::protocol_error, "client frame not masked");
    if (!is_known_opcode(h.op)) return fail(close_code::protocol_error, "unknown opcode");
    if (is_control(h.op)) {
        if (!h.fin) return fail(close_code::protocol_error, "fragmented control frame");
        if (h.payload_size > max_control_payload) {
            return fail(close_code::protocol_error, "control frame too long");
        }
        return {};
    }
    const bool in_message = fragment_op_ != opcode::continuation;
    if (h.op == opcode::continuation && !in_message) {
        return fail(close_code::protocol_error, "continuation without a message");
    }
    if (h.op != opcode::continuation && in_message) {
        return fail(close_code::protocol_error, "new message inside a fragmented message");
    }
    const std::uint64_t total = fragments_.size() + h.payload_size;
    if (h.payload_size > max_message_size_ || total > max_message_size_) {
        return fail(close_code::message_too_big, "message too big");
    }
    return {};
}

message_reader::result message_reader::consume(std::uint8_t* data, std::size_t size,
                                               message_handler& handler) {
    result r;
    std::size_t pos = 0;
    while (pos < size) {
        frame_header h;
        const auto status = parse_header(data + pos, size - pos, h);
        if (status == header_status::incomplete) break;
        if (status == header_status::invalid) {
            r.failure = fail(close_code::protocol_error, "bad length encoding");
            break;
        }
        if (auto f = check(h)) {
            r.failure = f;
            break;
        }
        const std::size_t frame_size = h.header_size + static_cast<std::size_t>(h.payload_size);
        if (size - pos < frame_size) {
            r.next_frame_size = frame_size;
            break;
        }
        std::uint8_t* payload = data + pos + h.header_size;
        const auto n = static_cast<std::size_t>(h.payload_size);
        apply_mask(payload, n, h.mask_key);
        const std::string_view view(reinterpret_cast<const char*>(payload), n);
        pos += frame_size;
        r.consumed = pos;

        bool go_on = true;
        switch (h.op) {
            case opcode::ping:
                go_on = handler.on_ping(view);
                break;
            case opcode::pong:
                go_on = handler.on_pong(view);
                break;
            case opcode::close: {
                if (n == 1) {
                    r.failure = fail(close_code::protocol_error, "close payload of one byte");
                    return r;
                }
                std::uint16_t code = close_code::no_status;
                std::string_view reason;
                if (n >= 2) {
                    code = static_cast<std::uint16_t>((payload[0] << 8) | payload[1]);
                    reason = view.substr(2);
                    if (!is_valid_close_code(code)) {
                        r.failure = fail(close_code::protocol_error, "invalid close code");
                        return r;
                    }
                    if (!is_valid_utf8(reason)) {
                        r.failure = fail(close_code::invalid_payload, "close reason not UTF-8");
                        return r;
                    }
                }
                go_on = handler.on_close(code, reason);
                break;
            }
            case opcode::text:
            case opcode::binary:
            case opcode::continuation: {
                if (h.op != opcode::continuation && h.fin) {
                    // The common case: a whole message in one frame, handed out in place.
                    if (h.op == opcode::text && !is_valid_utf8(view)) {
                        r.failure = fail(close_code::invalid_payload, "text is not UTF-8");
                        return r;
                    }
                    go_on = handler.on_message(h.op, view);
                    break;
                }
                if (h.op != opcode::continuation) fragment_op_ = h.op;
                fragments_.append(view);
                if (!h.fin) break;
                const opcode op = fragment_op_;
                fragment_op_ = opcode::continuation;
                std::string message;
                message.swap(fragments_);
                if (op == opcode::text && !is_valid_utf8(message)) {
                    r.failure = fail(close_code::invalid_payload, "text is not UTF-8");
                    return r;
                }
                go_on = handler.on_message(op, message);
                break;
            }
        }
        if (!go_on) {
            r.stopped = true;
            return r;
        }
    }
    return r;
}

}  // namespace wsgate::protocol::rfc6455
