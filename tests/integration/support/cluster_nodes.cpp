#include "support/cluster_nodes.hpp"

#include "support/frames.hpp"
#include "support/http_client.hpp"

#include <gtest/gtest.h>

namespace wsgate::test {

namespace json = boost::json;
using std::chrono::milliseconds;

void subscribe(ws_client& c, std::string_view channel) {
    c.send_json(subscribe_frame(1, {std::string(channel)}));
    c.expect_json("subscribed");
}

json::object health(const gateway_process& node) {
    const auto r = http_get(node.port(), "/health");
    return r.json().as_object();
}

bool broker_up(const gateway_process& node) {
    const auto h = health(node);
    return h.at("broker").as_string() == "up";
}

void await_route(ws_client& publisher, ws_client& subscriber, std::string_view channel) {
    static std::int64_t next_id = 30'000;
    for (int i = 0; i < 100; ++i) {
        const std::int64_t id = ++next_id;
        publisher.send_json(publish_frame(id, channel, json::string("probe")));
        const auto reply = publisher.reply_to(id);
        if (reply.at("type").as_string() != "ack") continue;  // broker not ready yet
        if (subscriber.read(milliseconds{50}).is_message()) return;
    }
    FAIL() << "no probe crossed the nodes on " << channel;
}

bool await_direct_route(ws_client& from, std::string_view to,
                        const std::vector<ws_client*>& receivers) {
    std::vector<bool> seen(receivers.size(), false);
    for (int i = 0; i < 100; ++i) {
        const std::int64_t id = 10'000 + i;
        from.send_json(direct_frame(id, to, json::string("probe")));
        from.reply_to(id);
        bool all = true;
        for (std::size_t k = 0; k < receivers.size(); ++k) {
            if (!seen[k]) seen[k] = receivers[k]->read(milliseconds{30}).is_message();
            all = all && seen[k];
        }
        if (all) return true;
    }
    return false;
}

std::int64_t seq_of(ws_client& c, std::string_view channel, const json::value& data) {
    const auto m = c.expect_json("message", milliseconds{5000}, [&](const json::object& f) {
        const auto& p = f.at("payload").as_object();
        return p.at("channel").as_string() == channel && p.at("data") == data;
    });
    return as_int(m.at("payload").as_object().at("seq"));
}

}  // namespace wsgate::test
