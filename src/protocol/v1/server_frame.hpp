#pragma once
// Server -> client frames of protocol v1, encoded straight into ready-to-send WebSocket text
// frames (core::wire_frame). A delivery is encoded once and the same buffer goes to every
// subscriber.

#include "core/broker.hpp"
#include "core/error.hpp"
#include "core/frame.hpp"

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace wsgate::protocol::v1 {

// Builds one JSON text frame, leaving room in front for the WebSocket header so that the
// payload is never copied again.
class frame_builder {
public:
    explicit frame_builder(std::size_t expected_payload = 128);

    frame_builder& raw(std::string_view json_text);  // appended verbatim
    frame_builder& string(std::string_view text);    // appended as a JSON string
    frame_builder& number(std::uint64_t value);
    // `,"id":<id>` when the request had an id (raw JSON), nothing otherwise.
    frame_builder& id_field(std::string_view id_json);

    // Leaves the builder empty.
    core::frame_ptr finish();

private:
    std::string buffer_;
};

void append_json_string(std::string& out, std::string_view text);

// RFC 3339 UTC with milliseconds, e.g. 2026-11-22T10:15:30.123Z.
std::string format_timestamp(std::chrono::system_clock::time_point t);

core::frame_ptr auth_success(std::string_view id, std::string_view user_id,
                             std::string_view session_id);
core::frame_ptr registered();
core::frame_ptr subscribed(std::string_view id, std::span<const std::string> channels,
                           bool subscribe);
core::frame_ptr publish_ack(std::string_view id, std::string_view channel, std::uint64_t seq);
core::frame_ptr direct_ack(std::string_view id, std::string_view to);
core::frame_ptr pong(std::string_view id);
core::frame_ptr presence_reply(std::string_view id, std::string_view channel,
                               const std::vector<core::presence_member>& members);
// {"type":"join"|"leave","payload":{"channel":..,"user_id":..}} as JSON text (the Redis broker
// publishes it; text_frame() frames it).
std::string presence_event_json(bool join, std::string_view channel, std::string_view user);
// `legacy` adds the seed-002 top-level "error" string.
core::frame_ptr error_frame(std::string_view id, core::error code, std::string_view message,
                            bool legacy);

// The message frame's JSON around its seq: head + seq + tail. The Redis broker has Redis splice
// in the seq; channel_message() below is built from the same two parts.
std::string channel_message_head(std::string_view channel);
std::string channel_message_tail(std::string_view from, std::string_view ts,
                                 std::string_view data_json);

// A text frame around JSON that is already encoded (a message received from another node).
core::frame_ptr text_frame(std::string_view json);

// The payload of a single, complete, unmasked frame such as those built here.
std::string_view frame_payload(const core::wire_frame& frame);

core::frame_ptr channel_message(std::string_view channel, std::uint64_t seq, std::string_view from,
                                std::string_view ts, std::string_view data_json);
core::frame_ptr direct_message(std::string_view from, std::string_view ts,
                               std::string_view data_json);
// Seed 002 delivery: {"type":"message","from":"alice","content":...}
core::frame_ptr legacy_direct_message(std::string_view from, std::string_view content_json);

}  // namespace wsgate::protocol::v1
