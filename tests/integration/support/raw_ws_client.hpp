#pragma once
// raw_ws_client: a blocking TCP socket that performs the WebSocket upgrade by hand and then
// sends whatever bytes a test builds, including frames RFC 6455 forbids (unmasked, reserved
// bits, fragmented control frames, bad opcodes, bad UTF-8, bad close codes). It reads the
// server's frames without answering anything by itself: no automatic pong, no close echo,
// which is what the ping, slow-consumer and drain tests need.
//
// Every wait is a poll() with a deadline. Thread safety: one thread per client.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wsgate::test {

namespace opcode {
constexpr std::uint8_t continuation = 0x0;
constexpr std::uint8_t text = 0x1;
constexpr std::uint8_t binary = 0x2;
constexpr std::uint8_t close = 0x8;
constexpr std::uint8_t ping = 0x9;
constexpr std::uint8_t pong = 0xA;
}  // namespace opcode

struct frame_spec {
    std::uint8_t opcode = opcode::text;
    std::string payload;
    bool fin = true;
    std::uint8_t rsv = 0;  // the three RSV bits as 0b0RRR (RSV1 = 4, RSV2 = 2, RSV3 = 1)
    bool masked = true;
};

// The wire bytes of one frame (client frames are masked with a random key unless told not).
std::string encode_frame(const frame_spec& spec);
// Only the header of a frame announcing `payload_length` bytes (masked, with a mask key).
std::string encode_frame_header(std::uint8_t opcode, bool fin, std::uint64_t payload_length);
// Close frame payload: 2-byte big-endian code followed by the reason.
std::string close_payload(std::uint16_t code, std::string_view reason = "");

struct raw_frame {
    bool fin = false;
    std::uint8_t rsv = 0;
    std::uint8_t opcode = 0;
    bool masked = false;
    std::string payload;

    // For a close frame: the status code, or nullopt when the payload has none.
    std::optional<int> close_code() const;
    std::string close_reason() const;
};

struct raw_event {
    enum class kind { frame, eof, timeout };
    kind what = kind::timeout;
    raw_frame frame;
    std::string error;  // for eof: the reset/errno text when the connection was reset

    std::string describe() const;
};

struct upgrade_options {
    std::vector<std::pair<std::string, std::string>> headers;
    int receive_buffer = 0;  // SO_RCVBUF set before connect when > 0
    std::chrono::milliseconds timeout{5000};
};

class raw_ws_client {
public:
    raw_ws_client() = default;
    ~raw_ws_client();
    raw_ws_client(raw_ws_client&& other) noexcept;
    raw_ws_client& operator=(raw_ws_client&& other) noexcept;
    raw_ws_client(const raw_ws_client&) = delete;
    raw_ws_client& operator=(const raw_ws_client&) = delete;

    // Connects, sends the upgrade request and checks the 101 reply (status and
    // Sec-WebSocket-Accept). Throws with the server's answer otherwise.
    void connect(std::uint16_t port, std::string_view target = "/ws",
                 const upgrade_options& options = {});

    void send_raw(std::string_view bytes);
    void send_frame(const frame_spec& spec) { send_raw(encode_frame(spec)); }
    void send_text(std::string_view text) { send_frame({opcode::text, std::string(text)}); }

    // The next server frame, EOF, or timeout. Frames are returned exactly as received.
    raw_event read_event(std::chrono::milliseconds timeout = std::chrono::milliseconds{5000});
    // Reads frames until a close frame or EOF; every frame passed over is appended to
    // `passed_over` when given. Returns the close frame event, an eof event, or a timeout.
    raw_event read_until_close(std::chrono::milliseconds timeout = std::chrono::milliseconds{5000},
                               std::vector<raw_frame>* passed_over = nullptr);
    // Reads until a text frame whose payload contains `needle`; skips other frames.
    std::optional<raw_frame> read_text_containing(
        std::string_view needle,
        std::chrono::milliseconds timeout = std::chrono::milliseconds{5000});
    // True when the server ends the TCP connection (EOF or reset) before the deadline; frames
    // that arrive first are discarded.
    bool wait_for_eof(std::chrono::milliseconds timeout = std::chrono::milliseconds{5000});

    void shutdown_write();
    void close();
    int fd() const { return fd_; }

private:
    bool fill(std::chrono::steady_clock::time_point deadline);  // false on timeout
    std::optional<raw_frame> parse_buffered();

    int fd_ = -1;
    std::string in_;  // received, not yet parsed
    bool eof_ = false;
    std::string eof_error_;
};

}  // namespace wsgate::test
