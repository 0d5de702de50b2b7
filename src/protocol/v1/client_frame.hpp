#pragma once
// Client -> server frames of protocol v1 (docs/protocol.md), decoded and validated.
// Pure: no I/O, no connection state. The caller decides what a command means for its
// connection (for example whether it is authenticated).

#include "core/error.hpp"

#include <boost/json/storage_ptr.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace wsgate::protocol::v1 {

enum class command_kind {
    auth,           // {"type":"auth","payload":{"token"|"user_id"}}
    register_user,  // seed 002: {"type":"register","userId":"alice"}
    subscribe,
    unsubscribe,
    publish,
    direct,  // {"type":"direct","payload":{"to","data"}}
    ping,
    legacy_publish,  // seed 000: {"channel":"c","message":...} without "type"
    legacy_text,     // seed 000: plain, non-JSON text
    legacy_direct,   // seed 002: {"type":"message","to":"bob","content":...}
    presence,        // {"type":"presence","payload":{"channel"}}
};

struct command {
    command_kind kind = command_kind::ping;
    std::string id;  // the request id as raw JSON (number or string); empty when absent
    std::string token;
    std::string user_id;
    std::vector<std::string> channels;  // subscribe / unsubscribe
    std::string channel;                // publish / legacy_publish / legacy_text
    std::string to;                     // direct / legacy_direct
    std::string data;                   // the payload as serialized JSON (legacy_direct: content)
    bool legacy = false;                // a seed client's frame: seed-style replies
};

struct decode_result {
    command cmd;
    core::error error{};  // value-initialized (0): decoded fine
    std::string detail;   // human text for the error frame
    bool ok() const noexcept { return error == core::error{}; }
};

// The channel plain-text (seed 000) messages are published to.
inline constexpr std::string_view default_text_channel = "broadcast";

// Decodes one text message. `storage` backs the temporary JSON tree (pass a per-thread
// monotonic resource to avoid heap work); nothing in the result refers to it.
decode_result decode_client_frame(std::string_view text, boost::json::storage_ptr storage = {});

}  // namespace wsgate::protocol::v1
