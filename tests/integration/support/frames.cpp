#include "support/frames.hpp"

#include <boost/json/serialize.hpp>

#include <regex>
#include <stdexcept>
#include <thread>

namespace wsgate::test {

namespace json = boost::json;

namespace {

json::array string_array(const std::vector<std::string>& items) {
    json::array a;
    for (const auto& s : items) a.emplace_back(s);
    return a;
}

}  // namespace

json::object make_frame(std::string_view type, std::int64_t id, json::object payload) {
    json::object f;
    f["type"] = type;
    if (id >= 0) f["id"] = id;
    f["payload"] = std::move(payload);
    return f;
}

json::object subscribe_frame(std::int64_t id, const std::vector<std::string>& channels) {
    json::object p;
    p["channels"] = string_array(channels);
    return make_frame("subscribe", id, std::move(p));
}

json::object unsubscribe_frame(std::int64_t id, const std::vector<std::string>& channels) {
    json::object p;
    p["channels"] = string_array(channels);
    return make_frame("unsubscribe", id, std::move(p));
}

json::object publish_frame(std::int64_t id, std::string_view channel, json::value data) {
    json::object p;
    p["channel"] = channel;
    p["data"] = std::move(data);
    return make_frame("publish", id, std::move(p));
}

json::object direct_frame(std::int64_t id, std::string_view to, json::value data) {
    json::object p;
    p["to"] = to;
    p["data"] = std::move(data);
    return make_frame("direct", id, std::move(p));
}

json::object ping_frame(std::int64_t id) {
    json::object f;
    f["type"] = "ping";
    if (id >= 0) f["id"] = id;
    return f;
}

json::object auth_token_frame(std::int64_t id, std::string_view token) {
    json::object p;
    p["token"] = token;
    return make_frame("auth", id, std::move(p));
}

json::object auth_user_frame(std::int64_t id, std::string_view user_id) {
    json::object p;
    p["user_id"] = user_id;
    return make_frame("auth", id, std::move(p));
}

const json::object& payload_of(const json::object& frame) {
    const auto* p = frame.if_contains("payload");
    if (p == nullptr || !p->is_object()) {
        throw std::runtime_error("frame has no payload object: " + json::serialize(frame));
    }
    return p->as_object();
}

std::string error_code_of(const json::object& frame) {
    const auto* p = frame.if_contains("payload");
    if (p == nullptr || !p->is_object()) return {};
    const auto* c = p->as_object().if_contains("code");
    return c != nullptr && c->is_string() ? std::string(c->as_string()) : std::string();
}

std::int64_t as_int(const json::value& v) {
    if (v.is_int64()) return v.as_int64();
    if (v.is_uint64()) return static_cast<std::int64_t>(v.as_uint64());
    throw std::runtime_error("not a JSON integer: " + json::serialize(v));
}

std::vector<std::string> as_strings(const json::value& v) {
    if (!v.is_array()) throw std::runtime_error("not a JSON array: " + json::serialize(v));
    std::vector<std::string> out;
    for (const auto& item : v.as_array()) {
        if (!item.is_string()) throw std::runtime_error("not a string: " + json::serialize(item));
        out.emplace_back(item.as_string());
    }
    return out;
}

bool is_rfc3339_utc_millis(std::string_view ts) {
    static const std::regex pattern(
        R"(^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{3}Z$)");
    return std::regex_match(ts.begin(), ts.end(), pattern);
}

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
                std::chrono::milliseconds interval) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (condition()) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(interval);
    }
}

}  // namespace wsgate::test
