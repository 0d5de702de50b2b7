#include "protocol/v1/client_frame.hpp"

#include "core/channel_name.hpp"
#include "protocol/rfc6455/utf8.hpp"

#include <cmath>

#include <boost/json.hpp>

namespace wsgate::protocol::v1 {

namespace json = boost::json;

namespace {

std::string error_category_message(core::error e) {
    return core::make_error_code(e).message();
}

decode_result failure(core::error e, std::string detail, command cmd = {}) {
    decode_result r;
    r.cmd = std::move(cmd);
    r.error = e;
    r.detail = std::move(detail);
    return r;
}

bool looks_like_json(std::string_view text) {
    for (char c : text) {
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
        return c == '{' || c == '[';
    }
    return false;
}

bool fail_missing(std::string_view key, decode_result& r) {
    r = failure(core::error::missing_field, "missing field \"" + std::string(key) + "\"",
                std::move(r.cmd));
    return false;
}

// Reads a required non-empty string field; sets r on failure.
bool required_string(const json::object& o, std::string_view key, std::string& out,
                     decode_result& r) {
    const auto* v = o.if_contains(key);
    if (v == nullptr) {
        return fail_missing(key, r);
    }
    const auto* s = v->if_string();
    if (s == nullptr || s->empty()) {
        r = failure(core::error::invalid_field,
                    "field \"" + std::string(key) + "\" must be a non-empty string",
                    std::move(r.cmd));
        return false;
    }
    out.assign(s->data(), s->size());
    return true;
}

// JSON has no Infinity: a number too large for a double (1e400) would be re-serialized as
// one, so such values are refused.
bool all_numbers_finite(const json::value& v) {
    switch (v.kind()) {
        case json::kind::double_:
            return std::isfinite(v.get_double());
        case json::kind::array:
            for (const auto& item : v.get_array()) {
                if (!all_numbers_finite(item)) return false;
            }
            return true;
        case json::kind::object:
            for (const auto& item : v.get_object()) {
                if (!all_numbers_finite(item.value())) return false;
            }
            return true;
        default:
            return true;
    }
}

bool required_value(const json::object& o, std::string_view key, std::string& out,
                    decode_result& r) {
    const auto* v = o.if_contains(key);
    if (v == nullptr) {
        return fail_missing(key, r);
    }
    if (!all_numbers_finite(*v)) {
        r = failure(core::error::invalid_field,
                    "field \"" + std::string(key) + "\" holds a number out of range",
                    std::move(r.cmd));
        return false;
    }
    out = json::serialize(*v);
    return true;
}

bool channel_field(const json::object& o, std::string_view key, std::string& out,
                   decode_result& r) {
    if (!required_string(o, key, out, r)) return false;
    if (!core::is_valid_channel_name(out)) {
        r = failure(core::error::bad_channel,
                    "bad channel name; " + error_category_message(core::error::bad_channel),
                    std::move(r.cmd));
        return false;
    }
    return true;
}

bool channel_list(const json::object& payload, decode_result& r) {
    auto& channels = r.cmd.channels;
    if (const auto* list = payload.if_contains("channels")) {
        const auto* arr = list->if_array();
        if (arr == nullptr || arr->empty()) {
            r = failure(core::error::invalid_field,
                        "field \"channels\" must be a non-empty array of strings",
                        std::move(r.cmd));
            return false;
        }
        channels.reserve(arr->size());
        for (const auto& item : *arr) {
            const auto* s = item.if_string();
            if (s == nullptr) {
                r = failure(core::error::invalid_field,
                            "field \"channels\" must be a non-empty array of strings",
                            std::move(r.cmd));
                return false;
            }
            if (!core::is_valid_channel_name(*s)) {
                r = failure(core::error::bad_channel,
                            "bad channel name \"" + std::string(rfc6455::utf8_prefix(*s, 64)) +
                                "\"; " + error_category_message(core::error::bad_channel),
                            std::move(r.cmd));
                return false;
            }
            channels.emplace_back(s->data(), s->size());
        }
        return true;
    }
    if (payload.contains("channel")) {
        std::string one;
        if (!channel_field(payload, "channel", one, r)) return false;
        channels.push_back(std::move(one));
        return true;
    }
    return fail_missing("channels", r);
}

}  // namespace

decode_result decode_client_frame(std::string_view text, json::storage_ptr storage) {
    decode_result r;
    boost::system::error_code ec;
    json::value root = json::parse(text, ec, std::move(storage));
    if (ec) {
        if (looks_like_json(text)) return failure(core::error::bad_json, "frame is not valid JSON");
        // Seed 000 clients send plain text; it goes to the default channel.
        r.cmd.kind = command_kind::legacy_text;
        r.cmd.legacy = true;
        r.cmd.channel = default_text_channel;
        r.cmd.data = json::serialize(json::string_view(text.data(), text.size()));
        return r;
    }
    const auto* obj = root.if_object();
    if (obj == nullptr) return failure(core::error::bad_frame, "frame must be a JSON object");

    if (const auto* id = obj->if_contains("id")) {
        if ((!id->is_number() && !id->is_string()) || !all_numbers_finite(*id)) {
            return failure(core::error::invalid_field, "field \"id\" must be a number or a string");
        }
        r.cmd.id = json::serialize(*id);
    }

    const auto* type_value = obj->if_contains("type");
    if (type_value == nullptr) {
        // Seed 000: {"channel": "...", "message": ..., "timestamp": ...} publishes the object.
        if (obj->contains("channel")) {
            r.cmd.kind = command_kind::legacy_publish;
            r.cmd.legacy = true;
            if (!channel_field(*obj, "channel", r.cmd.channel, r)) return r;
            if (!all_numbers_finite(root)) {
                return failure(core::error::invalid_field, "a number is out of range",
                               std::move(r.cmd));
            }
            r.cmd.data = json::serialize(root);
            return r;
        }
        return failure(core::error::bad_frame, "frame has no \"type\"", std::move(r.cmd));
    }
    const auto* type_string = type_value->if_string();
    if (type_string == nullptr) {
        return failure(core::error::bad_frame, "field \"type\" must be a string", std::move(r.cmd));
    }
    const std::string_view type = *type_string;

    static const json::object empty_payload;
    const json::object* payload = &empty_payload;
    if (const auto* p = obj->if_contains("payload")) {
        payload = p->if_object();
        if (payload == nullptr) {
            return failure(core::error::bad_frame, "field \"payload\" must be an object",
                           std::move(r.cmd));
        }
    }

    auto& cmd = r.cmd;
    if (type == "publish") {
        cmd.kind = command_kind::publish;
        if (!channel_field(*payload, "channel", cmd.channel, r)) return r;
        required_value(*payload, "data", cmd.data, r);
    } else if (type == "subscribe" || type == "unsubscribe") {
        cmd.kind = type == "subscribe" ? command_kind::subscribe : command_kind::unsubscribe;
        channel_list(*payload, r);
    } else if (type == "ping") {
        cmd.kind = command_kind::ping;
    } else if (type == "presence") {
        cmd.kind = command_kind::presence;
        channel_field(*payload, "channel", cmd.channel, r);
    } else if (type == "auth") {
        cmd.kind = command_kind::auth;
        if (const auto* t = payload->if_contains("token")) {
            const auto* s = t->if_string();
            if (s == nullptr) {
                return failure(core::error::invalid_field, "field \"token\" must be a string",
                               std::move(cmd));
            }
            cmd.token.assign(s->data(), s->size());
        }
        if (const auto* u = payload->if_contains("user_id")) {
            const auto* s = u->if_string();
            if (s == nullptr || s->empty()) {
                return failure(core::error::invalid_field,
                               "field \"user_id\" must be a non-empty string", std::move(cmd));
            }
            cmd.user_id.assign(s->data(), s->size());
        }
    } else if (type == "direct") {
        cmd.kind = command_kind::direct;
        if (!required_string(*payload, "to", cmd.to, r)) return r;
        required_value(*payload, "data", cmd.data, r);
    } else if (type == "register") {
        cmd.kind = command_kind::register_user;
        cmd.legacy = true;
        required_string(*obj, "userId", cmd.user_id, r);
    } else if (type == "message") {
        cmd.kind = command_kind::legacy_direct;
        cmd.legacy = true;
        if (!required_string(*obj, "to", cmd.to, r)) return r;
        required_value(*obj, "content", cmd.data, r);
    } else {
        return failure(core::error::unknown_type,
                       "unknown frame type \"" + std::string(rfc6455::utf8_prefix(type, 64)) + "\"",
                       std::move(cmd));
    }
    return r;
}

}  // namespace wsgate::protocol::v1
