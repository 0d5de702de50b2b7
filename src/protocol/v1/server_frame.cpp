#include "protocol/v1/server_frame.hpp"

#include "protocol/rfc6455/frame.hpp"

#include <charconv>
#include <cstdio>
#include <ctime>

namespace wsgate::protocol::v1 {

namespace rfc = protocol::rfc6455;

frame_builder::frame_builder(std::size_t expected_payload) {
    buffer_.reserve(rfc::max_header_size + expected_payload);
    buffer_.resize(rfc::max_header_size);
}

frame_builder& frame_builder::raw(std::string_view json_text) {
    buffer_.append(json_text);
    return *this;
}

frame_builder& frame_builder::string(std::string_view text) {
    append_json_string(buffer_, text);
    return *this;
}

frame_builder& frame_builder::number(std::uint64_t value) {
    char digits[24];
    const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
    buffer_.append(digits, end);
    return *this;
}

frame_builder& frame_builder::id_field(std::string_view id_json) {
    if (!id_json.empty()) buffer_.append(",\"id\":").append(id_json);
    return *this;
}

core::frame_ptr frame_builder::finish() {
    const std::size_t payload = buffer_.size() - rfc::max_header_size;
    const std::size_t header = rfc::header_size_for(payload);
    const std::size_t begin = rfc::max_header_size - header;
    rfc::encode_header(reinterpret_cast<std::uint8_t*>(buffer_.data() + begin), rfc::opcode::text,
                       payload);
    auto frame = std::make_shared<core::wire_frame>();
    frame->storage = std::move(buffer_);
    frame->begin = static_cast<std::uint32_t>(begin);
    frame->created_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
    return frame;
}

void append_json_string(std::string& out, std::string_view text) {
    static constexpr char hex[] = "0123456789abcdef";
    out.push_back('"');
    std::size_t run = 0;  // start of the pending run of bytes that need no escaping
    for (std::size_t i = 0; i < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        out.append(text.data() + run, i - run);
        run = i + 1;
        switch (c) {
            case '"':
                out.append("\\\"");
                break;
            case '\\':
                out.append("\\\\");
                break;
            case '\n':
                out.append("\\n");
                break;
            case '\r':
                out.append("\\r");
                break;
            case '\t':
                out.append("\\t");
                break;
            case '\b':
                out.append("\\b");
                break;
            case '\f':
                out.append("\\f");
                break;
            default:
                out.append("\\u00");
                out.push_back(hex[c >> 4]);
                out.push_back(hex[c & 0xF]);
        }
    }
    out.append(text.data() + run, text.size() - run);
    out.push_back('"');
}

std::string format_timestamp(std::chrono::system_clock::time_point t) {
    using namespace std::chrono;
    const auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count();
    const auto whole = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;  // floor, also before 1970
    const std::time_t seconds = static_cast<std::time_t>(whole);
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    char text[96];
    std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms - whole * 1000));
    return text;
}

core::frame_ptr auth_success(std::string_view id, std::string_view user_id,
                             std::string_view session_id) {
    return frame_builder{}
        .raw(R"({"type":"auth.success")")
        .id_field(id)
        .raw(R"(,"payload":{"user_id":)")
        .string(user_id)
        .raw(R"(,"session_id":)")
        .string(session_id)
        .raw("}}")
        .finish();
}

core::frame_ptr registered() {
    return frame_builder{}
        .raw(R"({"type":"registered","content":"Successfully registered"})")
        .finish();
}

core::frame_ptr subscribed(std::string_view id, std::span<const std::string> channels,
                           bool subscribe) {
    frame_builder b;
    b.raw(subscribe ? R"({"type":"subscribed")" : R"({"type":"unsubscribed")")
        .id_field(id)
        .raw(R"(,"payload":{"channels":[)");
    for (std::size_t i = 0; i < channels.size(); ++i) {
        if (i != 0) b.raw(",");
        b.string(channels[i]);
    }
    return b.raw("]}}").finish();
}

core::frame_ptr publish_ack(std::string_view id, std::string_view channel, std::uint64_t seq) {
    return frame_builder{}
        .raw(R"({"type":"ack")")
        .id_field(id)
        .raw(R"(,"payload":{"channel":)")
        .string(channel)
        .raw(R"(,"seq":)")
        .number(seq)
        .raw("}}")
        .finish();
}

core::frame_ptr direct_ack(std::string_view id, std::string_view to) {
    return frame_builder{}
        .raw(R"({"type":"ack")")
        .id_field(id)
        .raw(R"(,"payload":{"to":)")
        .string(to)
        .raw("}}")
        .finish();
}

core::frame_ptr pong(std::string_view id) {
    return frame_builder{}.raw(R"({"type":"pong")").id_field(id).raw("}").finish();
}

core::frame_ptr error_frame(std::string_view id, core::error code, std::string_view message,
                            bool legacy) {
    frame_builder b;
    b.raw(R"({"type":"error")")
        .id_field(id)
        .raw(R"(,"payload":{"code":)")
        .string(core::wire_code(code))
        .raw(R"(,"message":)")
        .string(message)
        .raw("}");
    if (legacy) b.raw(R"(,"error":)").string(message);
    return b.raw("}").finish();
}

core::frame_ptr presence_reply(std::string_view id, std::string_view channel,
                               const std::vector<core::presence_member>& members) {
    frame_builder b{64 + members.size() * 40};
    b.raw(R"({"type":"presence")").id_field(id).raw(R"(,"payload":{"channel":)").string(channel);
    b.raw(R"(,"members":[)");
    for (std::size_t i = 0; i < members.size(); ++i) {
        if (i != 0) b.raw(",");
        b.raw(R"({"user_id":)").string(members[i].user_id).raw(R"(,"connections":)");
        b.number(members[i].connections).raw("}");
    }
    return b.raw("]}}").finish();
}

std::string presence_event_json(bool join, std::string_view channel, std::string_view user) {
    std::string out(join ? R"({"type":"join","payload":{"channel":)"
                         : R"({"type":"leave","payload":{"channel":)");
    append_json_string(out, channel);
    out.append(R"(,"user_id":)");
    append_json_string(out, user);
    out.append("}}");
    return out;
}

std::string channel_message_head(std::string_view channel) {
    std::string head(R"({"type":"message","payload":{"channel":)");
    append_json_string(head, channel);
    head.append(R"(,"seq":)");
    return head;
}

std::string channel_message_tail(std::string_view from, std::string_view ts,
                                 std::string_view data_json) {
    std::string tail(R"(,"from":)");
    tail.reserve(tail.size() + from.size() + ts.size() + data_json.size() + 24);
    append_json_string(tail, from);
    tail.append(R"(,"ts":")").append(ts).append(R"(","data":)").append(data_json).append("}}");
    return tail;
}

core::frame_ptr channel_message(std::string_view channel, std::uint64_t seq, std::string_view from,
                                std::string_view ts, std::string_view data_json) {
    const std::string head = channel_message_head(channel);
    const std::string tail = channel_message_tail(from, ts, data_json);
    return frame_builder{head.size() + 20 + tail.size()}.raw(head).number(seq).raw(tail).finish();
}

core::frame_ptr text_frame(std::string_view json) {
    return frame_builder{json.size()}.raw(json).finish();
}

std::string_view frame_payload(const core::wire_frame& frame) {
    const auto bytes = frame.bytes();
    rfc6455::frame_header header;
    if (rfc6455::parse_header(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(),
                              header) != rfc6455::header_status::complete) {
        return {};
    }
    return bytes.substr(header.header_size, static_cast<std::size_t>(header.payload_size));
}

core::frame_ptr direct_message(std::string_view from, std::string_view ts,
                               std::string_view data_json) {
    return frame_builder{80 + from.size() + data_json.size()}
        .raw(R"({"type":"direct","payload":{"from":)")
        .string(from)
        .raw(R"(,"ts":")")
        .raw(ts)
        .raw(R"(","data":)")
        .raw(data_json)
        .raw("}}")
        .finish();
}

core::frame_ptr legacy_direct_message(std::string_view from, std::string_view content_json) {
    return frame_builder{48 + from.size() + content_json.size()}
        .raw(R"({"type":"message","from":)")
        .string(from)
        .raw(R"(,"content":)")
        .raw(content_json)
        .raw("}")
        .finish();
}

}  // namespace wsgate::protocol::v1
