#pragma once
// Turns the bytes a client sends into whole WebSocket messages and control frames, enforcing
// RFC 6455 for a server: client frames masked, no reserved bits, valid opcodes, control frames
// unfragmented and <= 125 bytes, continuations only inside a message, text is UTF-8, close
// payloads well formed, and a message size limit.
//
// One reader per connection; not thread-safe. The caller owns the input buffer: consume()
// unmasks in place and hands out views into it, valid only during the callback.

#include "protocol/rfc6455/frame.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace wsgate::protocol::rfc6455 {

class message_handler {
public:
    // Each returns false to stop consuming (for example, the connection is closing).
    virtual bool on_message(opcode op, std::string_view payload) = 0;  // text or binary
    virtual bool on_ping(std::string_view payload) = 0;
    virtual bool on_pong(std::string_view payload) = 0;
    // A valid close frame; code is close_code::no_status when the frame carried none.
    virtual bool on_close(std::uint16_t code, std::string_view reason) = 0;

protected:
    ~message_handler() = default;
};

struct read_failure {
    std::uint16_t close_code = 0;  // 0: no failure
    std::string_view reason;
    explicit operator bool() const noexcept { return close_code != 0; }
};

class message_reader {
public:
    explicit message_reader(std::size_t max_message_size) noexcept
        : max_message_size_(max_message_size) {}

    struct result {
        std::size_t consumed = 0;  // bytes of complete frames used; keep the rest for later
        read_failure failure;      // set: close the connection with this code
        bool stopped = false;      // a handler returned false
        // When the input ends inside a frame: how many bytes that frame needs in all, so the
        // caller can size its buffer. 0 when unknown (header itself incomplete).
        std::size_t next_frame_size = 0;
    };

    result consume(std::uint8_t* data, std::size_t size, message_handler& handler);

    std::size_t max_message_size() const noexcept { return max_message_size_; }
    // Bytes held for a fragmented message in progress (its capacity is released when done).
    std::size_t buffered() const noexcept { return fragments_.capacity(); }

private:
    read_failure check(const frame_header& h) const noexcept;

    std::size_t max_message_size_;
    std::string fragments_;
    opcode fragment_op_ = opcode::continuation;  // continuation: no message in progress
};

}  // namespace wsgate::protocol::rfc6455
