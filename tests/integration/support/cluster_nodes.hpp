#pragma once
// Helpers for tests that run several wsgate nodes through Redis: the node's broker state as
// /health reports it, and waits for a route between two clients on different nodes.
//
// Thread safety: use from the test's thread only.

#include "support/gateway_process.hpp"
#include "support/ws_client.hpp"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <string_view>
#include <vector>

namespace wsgate::test {

boost::json::object health(const gateway_process& node);
// /health says "broker":"up".
bool broker_up(const gateway_process& node);

// Subscribes `c` to `channel` and waits for "subscribed".
void subscribe(ws_client& c, std::string_view channel);

// Publishes probes from `publisher` until `subscriber` receives one (a broker that just came
// back, or a subscription still moving, may need a few): each probe's ack is consumed, and so
// are the subscriber's probe deliveries seen here. Fails the test when none arrives.
void await_route(ws_client& publisher, ws_client& subscriber, std::string_view channel);

// Sends direct probes from `from` to user `to` until every receiver has seen one; each probe's
// reply is consumed, so `from`'s stream stays clean. False when that does not happen.
bool await_direct_route(ws_client& from, std::string_view to,
                        const std::vector<ws_client*>& receivers);

// Reads message frames for `channel` until one whose data equals `data`; returns its seq.
std::int64_t seq_of(ws_client& c, std::string_view channel, const boost::json::value& data);

}  // namespace wsgate::test
