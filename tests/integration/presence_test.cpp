// Channel presence on one node (docs/protocol.md, "presence"): members with connection counts,
// join when a user's first connection subscribes, leave when the last one goes, only for the
// channel prefixes given by --presence-prefixes. The same presence read over HTTP,
// GET /api/presence/{channel} (docs/api.md): status codes, error codes, auth and keep-alive.

#include "support/frames.hpp"
#include "support/gateway_process.hpp"
#include "support/http_client.hpp"
#include "support/jwt_tokens.hpp"
#include "support/ws_client.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/serialize.hpp>

#include <exception>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

using namespace wsgate::test;
namespace json = boost::json;
using std::chrono::milliseconds;

namespace {

std::map<std::string, std::int64_t> members(ws_client& c, std::string_view channel, int id) {
    c.send_json(make_frame("presence", id, {{"channel", channel}}));
    const auto reply = c.reply_to(id);
    EXPECT_EQ(reply.at("type").as_string(), "presence") << json::serialize(reply);
    std::map<std::string, std::int64_t> out;
    for (const auto& m : payload_of(reply).at("members").as_array()) {
        out[std::string(m.as_object().at("user_id").as_string())] =
            as_int(m.as_object().at("connections"));
    }
    return out;
}

json::object event(ws_client& c, std::string_view type, std::string_view user) {
    return c.expect_json(type, milliseconds{5000}, [&](const json::object& f) {
        return payload_of(f).at("user_id").as_string() == user;
    });
}

using member_list = std::vector<std::pair<std::string, std::int64_t>>;

http_response get_presence(std::uint16_t port, std::string_view encoded_channel,
                           const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    return http_request(port, "GET", "/api/presence/" + std::string(encoded_channel), headers);
}

// The members of a 200 presence body, in the order the node wrote them.
member_list members_of(const http_response& r) {
    member_list out;
    const auto body = r.json();
    for (const auto& m : body.at("members").as_array()) {
        out.emplace_back(std::string(m.at("user_id").as_string()), as_int(m.at("connections")));
    }
    return out;
}

// error.code of a JSON error body, or "" when there is none.
std::string http_error_code(const http_response& r) {
    const auto body = r.json();
    if (!body.is_object() || !body.as_object().contains("error")) return {};
    return std::string(body.at("error").at("code").as_string());
}

// GETs `targets` on one connection (HTTP/1.1 keep-alive), each request sent once the answer to
// the previous one has arrived. Throws on a transport error or when 5 s pass.
std::vector<int> statuses_on_one_connection(std::uint16_t port,
                                            const std::vector<std::string>& targets) {
    namespace asio = boost::asio;
    namespace beast = boost::beast;
    namespace http = beast::http;
    asio::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.expires_after(std::chrono::seconds{5});  // covers the whole exchange
    std::vector<int> statuses;
    std::exception_ptr failure;
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
            co_await stream.async_connect(
                asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                asio::use_awaitable);
            beast::flat_buffer buffer;
            for (const auto& target : targets) {
                http::request<http::empty_body> req{http::verb::get, target, 11};
                req.set(http::field::host, "127.0.0.1");
                co_await http::async_write(stream, req, asio::use_awaitable);
                http::response<http::string_body> res;
                co_await http::async_read(stream, buffer, res, asio::use_awaitable);
                statuses.push_back(static_cast<int>(res.result_int()));
                if (!res.keep_alive()) break;
            }
        },
        [&](std::exception_ptr e) { failure = e; });
    ioc.run();
    if (failure) std::rethrow_exception(failure);
    return statuses;
}

}  // namespace

TEST(presence, members_join_and_leave_follow_the_users_connections) {
    gateway_process node({"--presence-prefixes", "room:"});
    auto alice = connect_as(node.port(), "alice");
    alice.send_json(subscribe_frame(1, {"room:1"}));
    alice.expect_json("subscribed");
    EXPECT_EQ(payload_of(event(alice, "join", "alice")).at("channel").as_string(), "room:1");

    auto bob = connect_as(node.port(), "bob");
    bob.send_json(subscribe_frame(1, {"room:1"}));
    bob.expect_json("subscribed");
    event(alice, "join", "bob");
    event(bob, "join", "bob");

    // A second connection of alice: counted, but she does not join twice.
    auto alice2 = connect_as(node.port(), "alice");
    alice2.send_json(subscribe_frame(1, {"room:1"}));
    alice2.expect_json("subscribed");
    const auto m = members(bob, "room:1", 10);
    EXPECT_EQ(m, (std::map<std::string, std::int64_t>{{"alice", 2}, {"bob", 1}}));

    alice2.close();  // alice still has a connection: no leave
    bob.send_json(unsubscribe_frame(11, {"room:1"}));
    bob.reply_to(11);
    // Events arrive in order: alice hears bob leave, and nothing about herself before it.
    const auto next = alice.expect_json("leave");
    EXPECT_EQ(payload_of(next).at("user_id").as_string(), "bob");
    EXPECT_EQ(members(alice, "room:1", 12), (std::map<std::string, std::int64_t>{{"alice", 1}}));
}

TEST(presence, channels_outside_the_prefixes_keep_no_presence) {
    gateway_process node({"--presence-prefixes", "room:"});
    auto alice = connect_as(node.port(), "alice");
    alice.send_json(subscribe_frame(1, {"news"}));
    alice.expect_json("subscribed");
    alice.send_json(make_frame("presence", 2, {{"channel", "news"}}));
    EXPECT_EQ(error_code_of(alice.reply_to(2)), "presence_disabled");
    // No join event came for "news": the next frame is the answer to a ping.
    alice.send_json(ping_frame(3));
    EXPECT_EQ(alice.next_json().at("type").as_string(), "pong");
}

TEST(presence, is_off_unless_configured) {
    gateway_process node;
    auto alice = connect_as(node.port(), "alice");
    alice.send_json(make_frame("presence", 1, {{"channel", "room:1"}}));
    EXPECT_EQ(error_code_of(alice.reply_to(1)), "presence_disabled");
}

// ---- GET /api/presence/{channel}

TEST(presence_http, lists_the_members_sorted_by_user_id_with_their_connection_counts) {
    gateway_process node({"--presence-prefixes", "room:"});
    // bob first, so that the order of the answer is not the order of arrival.
    auto bob = connect_as(node.port(), "bob");
    bob.send_json(subscribe_frame(1, {"room:1"}));
    bob.expect_json("subscribed");
    auto alice = connect_as(node.port(), "alice");
    alice.send_json(subscribe_frame(1, {"room:1"}));
    alice.expect_json("subscribed");
    auto alice2 = connect_as(node.port(), "alice");
    alice2.send_json(subscribe_frame(1, {"room:1"}));
    alice2.expect_json("subscribed");

    const auto r = get_presence(node.port(), "room:1");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("Content-Type"), "application/json");
    EXPECT_EQ(r.json().at("channel").as_string(), "room:1") << r.body;
    EXPECT_EQ(members_of(r), (member_list{{"alice", 2}, {"bob", 1}})) << r.body;

    // The same members as the WebSocket query.
    EXPECT_EQ(members(bob, "room:1", 2),
              (std::map<std::string, std::int64_t>{{"alice", 2}, {"bob", 1}}));

    // A channel with presence but nobody in it: 200 with no members.
    const auto empty = get_presence(node.port(), "room:2");
    ASSERT_EQ(empty.status, 200) << empty.body;
    EXPECT_EQ(members_of(empty), member_list{}) << empty.body;
}

TEST(presence_http, a_user_whose_last_connection_goes_is_no_longer_listed) {
    gateway_process node({"--presence-prefixes", "room:"});
    auto alice = connect_as(node.port(), "alice");
    alice.send_json(subscribe_frame(1, {"room:1"}));
    alice.expect_json("subscribed");
    auto bob = connect_as(node.port(), "bob");
    bob.send_json(subscribe_frame(1, {"room:1"}));
    bob.expect_json("subscribed");
    ASSERT_EQ(members_of(get_presence(node.port(), "room:1")),
              (member_list{{"alice", 1}, {"bob", 1}}));

    bob.close();
    member_list last;
    EXPECT_TRUE(wait_until([&] {
        const auto r = get_presence(node.port(), "room:1");
        if (r.status != 200) return false;
        last = members_of(r);
        return last == member_list{{"alice", 1}};
    })) << "members still "
        << last.size();
}

TEST(presence_http, the_channel_is_the_percent_decoded_path_segment) {
    gateway_process node({"--presence-prefixes", "room:"});
    const std::string channel = "room:a/b@c=d,e";
    auto alice = connect_as(node.port(), "alice");
    alice.send_json(subscribe_frame(1, {channel}));
    alice.expect_json("subscribed");

    for (const std::string& encoded : std::vector<std::string>{
             "room%3Aa%2Fb%40c%3Dd%2Ce", "room:a%2Fb@c=d,e", "room%3aa%2fb%40c%3dd%2ce"}) {
        const auto r = get_presence(node.port(), encoded);
        ASSERT_EQ(r.status, 200) << encoded << ": " << r.body;
        EXPECT_EQ(r.json().at("channel").as_string(), channel) << r.body;
        EXPECT_EQ(members_of(r), (member_list{{"alice", 1}})) << r.body;
    }
    // The query string is not part of the name.
    EXPECT_EQ(http_get(node.port(), "/api/presence/room%3Aa%2Fb%40c%3Dd%2Ce?x=1").status, 200);
}

TEST(presence_http, a_bad_channel_name_is_a_400_bad_channel) {
    gateway_process node({"--presence-prefixes", "*"});
    for (const std::string& encoded :
         std::vector<std::string>{"", "room%201", "room%zz", "room%", "room%00", "caf%C3%A9",
                                  std::string(201, 'a'), "%01u%3Aalice"}) {
        const auto r = get_presence(node.port(), encoded);
        EXPECT_EQ(r.status, 400) << encoded << ": " << r.body;
        EXPECT_EQ(http_error_code(r), "bad_channel") << encoded << ": " << r.body;
    }
    // 200 bytes is still a name.
    EXPECT_EQ(get_presence(node.port(), std::string(200, 'a')).status, 200);
}

TEST(presence_http, other_paths_and_methods_keep_their_answers) {
    gateway_process node({"--presence-prefixes", "room:"});
    for (const std::string& target :
         std::vector<std::string>{"/api/presence", "/api/presence/room:1/extra",
                                  "/api/presence/room:1/", "/api/nothing"}) {
        const auto r = http_get(node.port(), target);
        EXPECT_EQ(r.status, 404) << target << ": " << r.body;
        EXPECT_EQ(http_error_code(r), "not_found") << target << ": " << r.body;
    }
    for (const std::string& method : std::vector<std::string>{"POST", "PUT", "DELETE"}) {
        const auto r = http_request(node.port(), method, "/api/presence/room:1");
        EXPECT_EQ(r.status, 405) << method << ": " << r.body;
        EXPECT_EQ(http_error_code(r), "method_not_allowed") << method << ": " << r.body;
    }
}

TEST(presence_http, a_channel_outside_the_prefixes_is_a_404_presence_disabled) {
    gateway_process node({"--presence-prefixes", "room:"});
    const auto r = get_presence(node.port(), "news");
    EXPECT_EQ(r.status, 404) << r.body;
    EXPECT_EQ(http_error_code(r), "presence_disabled") << r.body;

    gateway_process off;  // presence for no channel
    const auto r2 = get_presence(off.port(), "room:1");
    EXPECT_EQ(r2.status, 404) << r2.body;
    EXPECT_EQ(http_error_code(r2), "presence_disabled") << r2.body;
}

TEST(presence_http, keeps_the_connection_alive_across_requests) {
    gateway_process node({"--presence-prefixes", "room:"});
    auto alice = connect_as(node.port(), "alice");
    alice.send_json(subscribe_frame(1, {"room:1"}));
    alice.expect_json("subscribed");
    EXPECT_EQ(statuses_on_one_connection(
                  node.port(), {"/api/presence/room:1", "/api/presence/news",
                                "/api/presence/bad%20name", "/health", "/api/presence/room:1"}),
              (std::vector<int>{200, 404, 400, 200, 200}));
}

TEST(presence_http, with_a_jwt_secret_needs_a_bearer_token) {
    const std::string secret = "presence-test-secret-0123456789abcdef";
    gateway_process node({"--jwt-secret", secret, "--presence-prefixes", "room:"});
    ws_client alice;
    alice.connect(node.port(), "/ws",
                  {{"Authorization", "Bearer " + make_hs256_token(secret, valid_claims("alice"))}});
    alice.send_json(subscribe_frame(1, {"room:1"}));
    alice.expect_json("subscribed");

    const auto none = get_presence(node.port(), "room:1");
    EXPECT_EQ(none.status, 401) << none.body;
    EXPECT_EQ(http_error_code(none), "unauthorized") << none.body;
    EXPECT_EQ(none.header("WWW-Authenticate").rfind("Bearer", 0), 0u)
        << none.header("WWW-Authenticate");

    // A token in the URL, as the upgrade accepts it, is not enough here.
    const auto in_query = http_get(
        node.port(), "/api/presence/room:1?token=" + make_hs256_token(secret, valid_claims("bob")));
    EXPECT_EQ(in_query.status, 401) << in_query.body;

    jwt_claims expired = valid_claims("bob");
    expired.exp = seconds_from_now(-3600);
    for (const std::string& token : std::vector<std::string>{
             make_hs256_token(secret, expired),
             make_hs256_token("another-secret-0123456789abcdef", valid_claims("bob")),
             std::string("not-a-jwt")}) {
        const auto bad =
            get_presence(node.port(), "room:1", {{"Authorization", "Bearer " + token}});
        EXPECT_EQ(bad.status, 401) << bad.body;
        EXPECT_EQ(http_error_code(bad), "unauthorized") << bad.body;
        EXPECT_NE(bad.header("WWW-Authenticate").find(R"(error="invalid_token")"),
                  std::string::npos)
            << bad.header("WWW-Authenticate");
    }

    const auto ok = get_presence(
        node.port(), "room:1",
        {{"Authorization", "Bearer " + make_hs256_token(secret, valid_claims("bob"))}});
    ASSERT_EQ(ok.status, 200) << ok.body;
    EXPECT_EQ(members_of(ok), (member_list{{"alice", 1}})) << ok.body;
}

TEST(presence_http, an_unreachable_broker_is_a_503_broker_unavailable) {
    // A port bound but not listening refuses connections: Redis is "down" from the start.
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::acceptor closed(ioc);
    closed.open(boost::asio::ip::tcp::v4());
    closed.bind({boost::asio::ip::make_address("127.0.0.1"), 0});
    const auto redis_url = "redis://127.0.0.1:" + std::to_string(closed.local_endpoint().port());
    gateway_process node({"--redis-url", redis_url, "--presence-prefixes", "room:"});

    const auto r = get_presence(node.port(), "room:1");
    EXPECT_EQ(r.status, 503) << r.body;
    EXPECT_EQ(http_error_code(r), "broker_unavailable") << r.body;
}

// ---- user presence: GET /api/users/{user}/presence

namespace {

// node id -> connection ids of `user`, as GET /api/users/{user}/presence reports them.
// `user` is the path segment (percent-encoded); the reply names the decoded id, `user_id`.
std::map<std::string, std::set<std::string>> user_connections(std::uint16_t port,
                                                              std::string_view user,
                                                              std::string_view user_id = {}) {
    const auto r = http_get(port, "/api/users/" + std::string(user) + "/presence");
    EXPECT_EQ(r.status, 200) << r.body;
    const auto doc = r.json().as_object();
    EXPECT_EQ(doc.at("user_id").as_string(), user_id.empty() ? user : user_id);
    std::map<std::string, std::set<std::string>> out;
    for (const auto& c : doc.at("connections").as_array()) {
        out[std::string(c.as_object().at("node_id").as_string())].insert(
            std::string(c.as_object().at("connection_id").as_string()));
    }
    EXPECT_EQ(doc.at("online").as_bool(), !out.empty());
    return out;
}

}  // namespace

TEST(user_presence_http, lists_every_open_connection_until_the_last_one_goes) {
    gateway_process node({"--node-id", "solo"});
    EXPECT_TRUE(user_connections(node.port(), "alice").empty());
    auto first = connect_as(node.port(), "alice");
    auto second = connect_as(node.port(), "alice");
    auto bob = connect_as(node.port(), "bob");
    ASSERT_TRUE(
        wait_until([&] { return user_connections(node.port(), "alice")["solo"].size() == 2; }));
    EXPECT_EQ(user_connections(node.port(), "bob")["solo"].size(), 1u);

    first.close();
    ASSERT_TRUE(
        wait_until([&] { return user_connections(node.port(), "alice")["solo"].size() == 1; }));
    second.close();
    ASSERT_TRUE(wait_until([&] { return user_connections(node.port(), "alice").empty(); }));
    EXPECT_EQ(user_connections(node.port(), "bob")["solo"].size(), 1u);
}

TEST(user_presence_http, a_percent_encoded_user_id_is_decoded_and_an_empty_one_refused) {
    gateway_process node;
    auto c = connect_as(node.port(), "ann%20lee");  // the query decodes to "ann lee"
    ASSERT_TRUE(
        wait_until([&] { return !user_connections(node.port(), "ann%20lee", "ann lee").empty(); }));
    const auto empty = http_get(node.port(), "/api/users//presence");
    EXPECT_EQ(empty.status, 400) << empty.body;
    EXPECT_EQ(http_error_code(empty), "bad_user_id");
}

TEST(user_presence_http, needs_a_valid_token_when_the_node_checks_tokens) {
    const std::string secret = "user-presence-secret-0123456789abcdef";
    gateway_process node({"--jwt-secret", secret});
    EXPECT_EQ(http_get(node.port(), "/api/users/alice/presence").status, 401);
    const auto ok = http_request(
        node.port(), "GET", "/api/users/alice/presence",
        {{"Authorization", "Bearer " + make_hs256_token(secret, valid_claims("bob"))}});
    EXPECT_EQ(ok.status, 200) << ok.body;
}
