// Fuzz target for v1::decode_client_frame.
//
// The input is one text message. Like a session, only valid UTF-8 reaches the decoder (the
// message_reader refuses other text with 1007). It is decoded twice, with the default
// allocator and with a monotonic resource as the session does, and both results must agree.
// A decoded command must be safe to act on: channel names valid, ids and data valid JSON, and
// the frames the node would build from them parse as JSON.

#include "core/channel_name.hpp"
#include "core/error.hpp"
#include "fuzz_check.hpp"
#include "protocol/rfc6455/frame.hpp"
#include "protocol/rfc6455/utf8.hpp"
#include "protocol/v1/client_frame.hpp"
#include "protocol/v1/server_frame.hpp"

#include <boost/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace v1 = wsgate::protocol::v1;
namespace rfc = wsgate::protocol::rfc6455;
namespace core = wsgate::core;
namespace json = boost::json;

namespace {

bool is_json(std::string_view text, json::value* out = nullptr) {
    boost::system::error_code ec;
    json::value v = json::parse(text, ec);
    if (ec) return false;
    if (out != nullptr) *out = std::move(v);
    return true;
}

// The JSON text carried by a server frame, which must be one unmasked text frame.
std::string_view frame_payload(const core::frame_ptr& frame) {
    const std::string_view bytes = frame->bytes();
    rfc::frame_header h;
    WSGATE_FUZZ_CHECK(rfc::parse_header(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                        bytes.size(), h) == rfc::header_status::complete);
    WSGATE_FUZZ_CHECK(h.op == rfc::opcode::text && h.fin && !h.masked);
    WSGATE_FUZZ_CHECK(h.header_size + h.payload_size == bytes.size());
    return bytes.substr(h.header_size);
}

void check_frame_is_json(const core::frame_ptr& frame) {
    WSGATE_FUZZ_CHECK(is_json(frame_payload(frame)));
}

bool same(const v1::decode_result& a, const v1::decode_result& b) {
    return a.error == b.error && a.detail == b.detail && a.cmd.kind == b.cmd.kind &&
           a.cmd.id == b.cmd.id && a.cmd.token == b.cmd.token && a.cmd.user_id == b.cmd.user_id &&
           a.cmd.channels == b.cmd.channels && a.cmd.channel == b.cmd.channel &&
           a.cmd.to == b.cmd.to && a.cmd.data == b.cmd.data && a.cmd.legacy == b.cmd.legacy;
}

void check_ok(std::string_view text, const v1::command& cmd) {
    using k = v1::command_kind;
    switch (cmd.kind) {
        case k::subscribe:
        case k::unsubscribe:
            WSGATE_FUZZ_CHECK(!cmd.channels.empty());
            for (const auto& c : cmd.channels) WSGATE_FUZZ_CHECK(core::is_valid_channel_name(c));
            check_frame_is_json(v1::subscribed(cmd.id, cmd.channels, cmd.kind == k::subscribe));
            break;
        case k::publish:
        case k::legacy_publish:
        case k::legacy_text: {
            WSGATE_FUZZ_CHECK(core::is_valid_channel_name(cmd.channel));
            json::value data;
            WSGATE_FUZZ_CHECK(is_json(cmd.data, &data));
            if (cmd.kind == k::legacy_text) {
                WSGATE_FUZZ_CHECK(cmd.channel == v1::default_text_channel);
                WSGATE_FUZZ_CHECK(data.is_string() && data.as_string() == text);
            }
            if (cmd.kind == k::legacy_publish) WSGATE_FUZZ_CHECK(data.is_object());
            check_frame_is_json(
                v1::channel_message(cmd.channel, 1, "user", "2026-11-22T10:15:30.123Z", cmd.data));
            check_frame_is_json(v1::publish_ack(cmd.id, cmd.channel, 1));
            break;
        }
        case k::direct:
        case k::legacy_direct:
            WSGATE_FUZZ_CHECK(!cmd.to.empty());
            WSGATE_FUZZ_CHECK(is_json(cmd.data));
            check_frame_is_json(cmd.kind == k::direct
                                    ? v1::direct_message("user", "ts", cmd.data)
                                    : v1::legacy_direct_message("user", cmd.data));
            check_frame_is_json(v1::direct_ack(cmd.id, cmd.to));
            break;
        case k::register_user:
            WSGATE_FUZZ_CHECK(!cmd.user_id.empty());
            break;
        case k::auth:
            check_frame_is_json(v1::auth_success(cmd.id, cmd.user_id, "n1-0"));
            break;
        case k::ping:
            check_frame_is_json(v1::pong(cmd.id));
            break;
        case k::presence:
            WSGATE_FUZZ_CHECK(core::is_valid_channel_name(cmd.channel));
            check_frame_is_json(v1::presence_reply(cmd.id, cmd.channel, {{"user", 2}}));
            check_frame_is_json(v1::text_frame(v1::presence_event_json(true, cmd.channel, "u")));
            break;
    }
    const bool legacy_kind = cmd.kind == k::legacy_publish || cmd.kind == k::legacy_text ||
                             cmd.kind == k::legacy_direct || cmd.kind == k::register_user;
    WSGATE_FUZZ_CHECK(cmd.legacy == legacy_kind);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    if (!rfc::is_valid_utf8(text)) return 0;

    const v1::decode_result plain = v1::decode_client_frame(text);
    unsigned char stack[1024];
    json::monotonic_resource resource(stack, sizeof stack);
    const v1::decode_result pooled = v1::decode_client_frame(text, json::storage_ptr(&resource));
    resource.release();
    WSGATE_FUZZ_CHECK(same(plain, pooled));

    const auto& cmd = plain.cmd;
    if (!cmd.id.empty()) {
        json::value id;
        WSGATE_FUZZ_CHECK(is_json(cmd.id, &id));
        WSGATE_FUZZ_CHECK(id.is_number() || id.is_string());
    }
    if (plain.ok()) {
        WSGATE_FUZZ_CHECK(plain.detail.empty());
        check_ok(text, cmd);
    } else {
        using e = core::error;
        WSGATE_FUZZ_CHECK(plain.error == e::bad_json || plain.error == e::bad_frame ||
                          plain.error == e::unknown_type || plain.error == e::missing_field ||
                          plain.error == e::invalid_field || plain.error == e::bad_channel);
        WSGATE_FUZZ_CHECK(!plain.detail.empty());
        // The error reply built from it is JSON, whatever the client sent.
        check_frame_is_json(v1::error_frame(cmd.id, plain.error, plain.detail, cmd.legacy));
    }
    return 0;
}
