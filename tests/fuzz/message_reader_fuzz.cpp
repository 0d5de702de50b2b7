// Fuzz target for rfc6455::message_reader.
//
// Input layout: byte 0 is a control byte (bits 0-1: how many split bytes follow, minus one;
// bits 2-7: which of the first six handler callbacks return false). The split bytes give the
// sizes of the reads (cycled, 1..256 bytes each); the rest is the byte stream a client sent.
//
// The stream is read twice: once as one buffer, once in those reads the way a session keeps
// the unconsumed tail and appends the next read. Both must deliver the same callbacks and
// fail the same way; every callback and every result must respect the reader's contract.

#include "fuzz_check.hpp"
#include "protocol/rfc6455/frame.hpp"
#include "protocol/rfc6455/message_reader.hpp"
#include "protocol/rfc6455/utf8.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rfc = wsgate::protocol::rfc6455;

namespace {

constexpr std::size_t max_message_size = 4096;

class checking_handler final : public rfc::message_handler {
public:
    explicit checking_handler(std::uint8_t stop_pattern) : stop_pattern_(stop_pattern) {}

    // One line per callback, compared between the two runs.
    std::vector<std::string> log;
    // Set when a callback returned false; no callback may follow in the same consume().
    bool stop_requested = false;

    bool on_message(rfc::opcode op, std::string_view payload) override {
        WSGATE_FUZZ_CHECK(op == rfc::opcode::text || op == rfc::opcode::binary);
        WSGATE_FUZZ_CHECK(payload.size() <= max_message_size);
        if (op == rfc::opcode::text) WSGATE_FUZZ_CHECK(rfc::is_valid_utf8(payload));
        return record(op == rfc::opcode::text ? 'T' : 'B', payload);
    }
    bool on_ping(std::string_view payload) override {
        WSGATE_FUZZ_CHECK(payload.size() <= rfc::max_control_payload);
        return record('I', payload);
    }
    bool on_pong(std::string_view payload) override {
        WSGATE_FUZZ_CHECK(payload.size() <= rfc::max_control_payload);
        return record('O', payload);
    }
    bool on_close(std::uint16_t code, std::string_view reason) override {
        WSGATE_FUZZ_CHECK(code == rfc::close_code::no_status || rfc::is_valid_close_code(code));
        if (code == rfc::close_code::no_status) WSGATE_FUZZ_CHECK(reason.empty());
        WSGATE_FUZZ_CHECK(reason.size() <= rfc::max_control_payload - 2);
        WSGATE_FUZZ_CHECK(rfc::is_valid_utf8(reason));
        return record('C', std::to_string(code) + ":" + std::string(reason));
    }

private:
    bool record(char kind, std::string_view payload) {
        WSGATE_FUZZ_CHECK(!stop_requested);
        // Touch every byte: a view past its buffer shows up under AddressSanitizer.
        unsigned sum = 0;
        for (char c : payload) sum += static_cast<unsigned char>(c);
        sink_ = sink_ + sum;
        std::string line(1, kind);
        line.append(payload);
        log.push_back(std::move(line));
        const std::size_t index = log.size() - 1;
        const bool stop = index < 6 && ((stop_pattern_ >> index) & 1) != 0;
        if (stop) stop_requested = true;
        return !stop;
    }

    std::uint8_t stop_pattern_;
    volatile unsigned sink_ = 0;
};

struct run_outcome {
    std::vector<std::string> log;
    std::uint16_t failure = 0;
    std::size_t unconsumed = 0;  // bytes left over at the end (no failure)
};

// Consumes `buffer` until the reader needs more input, fails, or the buffer is used up,
// resuming after a handler stop as a session does. Returns bytes consumed.
std::size_t consume_all(rfc::message_reader& reader, std::uint8_t* data, std::size_t size,
                        checking_handler& handler, std::uint16_t& failure) {
    std::size_t pos = 0;
    for (;;) {
        handler.stop_requested = false;
        const auto r = reader.consume(data + pos, size - pos, handler);
        WSGATE_FUZZ_CHECK(r.consumed <= size - pos);
        WSGATE_FUZZ_CHECK(r.stopped == handler.stop_requested);
        pos += r.consumed;
        if (r.failure) {
            WSGATE_FUZZ_CHECK(!r.stopped);
            WSGATE_FUZZ_CHECK(r.failure.close_code == rfc::close_code::protocol_error ||
                              r.failure.close_code == rfc::close_code::invalid_payload ||
                              r.failure.close_code == rfc::close_code::message_too_big);
            WSGATE_FUZZ_CHECK(!r.failure.reason.empty());
            failure = r.failure.close_code;
            return pos;
        }
        if (r.stopped) {
            WSGATE_FUZZ_CHECK(r.consumed > 0);  // the stopping frame was consumed
            continue;
        }
        // Not stopped, not failed: everything complete was used; what is left is one
        // incomplete frame.
        if (r.next_frame_size != 0) {
            WSGATE_FUZZ_CHECK(r.next_frame_size > size - pos);
            WSGATE_FUZZ_CHECK(r.next_frame_size <= max_message_size + rfc::max_header_size);
        } else {
            WSGATE_FUZZ_CHECK(size - pos < rfc::max_header_size);
        }
        return pos;
    }
}

run_outcome run_whole(std::string_view stream, std::uint8_t stop_pattern) {
    rfc::message_reader reader(max_message_size);
    checking_handler handler(stop_pattern);
    std::vector<std::uint8_t> buffer(stream.begin(), stream.end());
    run_outcome out;
    const std::size_t consumed =
        consume_all(reader, buffer.data(), buffer.size(), handler, out.failure);
    out.unconsumed = out.failure != 0 ? 0 : buffer.size() - consumed;
    out.log = std::move(handler.log);
    return out;
}

run_outcome run_chunked(std::string_view stream, std::string_view splits,
                        std::uint8_t stop_pattern) {
    rfc::message_reader reader(max_message_size);
    checking_handler handler(stop_pattern);
    run_outcome out;
    std::string pending;
    std::size_t offset = 0;
    for (std::size_t read = 0; offset < stream.size(); ++read) {
        const std::size_t n = static_cast<unsigned char>(splits[read % splits.size()]) + 1u;
        const std::string_view chunk = stream.substr(offset, n);
        offset += chunk.size();
        pending.append(chunk);
        const std::size_t consumed =
            consume_all(reader, reinterpret_cast<std::uint8_t*>(pending.data()), pending.size(),
                        handler, out.failure);
        if (out.failure != 0) break;
        pending.erase(0, consumed);
    }
    out.unconsumed = out.failure != 0 ? 0 : pending.size();
    out.log = std::move(handler.log);
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    const std::uint8_t control = data[0];
    const std::size_t split_count = (control & 0x3u) + 1u;
    const auto stop_pattern = static_cast<std::uint8_t>(control >> 2);
    if (size < 1 + split_count) return 0;
    const std::string_view splits(reinterpret_cast<const char*>(data + 1), split_count);
    const std::string_view stream(reinterpret_cast<const char*>(data + 1 + split_count),
                                  size - 1 - split_count);

    const run_outcome whole = run_whole(stream, stop_pattern);
    const run_outcome chunked = run_chunked(stream, splits, stop_pattern);
    // The reader's output does not depend on how the bytes arrive.
    WSGATE_FUZZ_CHECK(whole.failure == chunked.failure);
    WSGATE_FUZZ_CHECK(whole.log == chunked.log);
    WSGATE_FUZZ_CHECK(whole.unconsumed == chunked.unconsumed);
    return 0;
}
