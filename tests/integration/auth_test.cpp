// Authentication on the real binary (docs/protocol.md, "Connecting and authenticating"): JWT
// HS256 / RS256 in an auth frame, the token query parameter and the Authorization header,
// every token_* error code, the auth timeout, and development mode.

#include "support/frames.hpp"
#include "support/gateway_process.hpp"
#include "support/http_client.hpp"
#include "support/jwt_tokens.hpp"
#include "support/temp_file.hpp"
#include "support/ws_client.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <string>
#include <vector>

using namespace wsgate::test;
namespace json = boost::json;

namespace {

const std::string secret = "integration-test-secret-0123456789abcdef";

std::vector<std::string> secret_args(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--jwt-secret", secret};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
}

// The connection can act as an authenticated user: a publish is acked.
void expect_publish_acked(ws_client& c, std::int64_t id) {
    c.send_json(publish_frame(id, "auth:probe", "x"));
    const auto reply = c.next_json();
    EXPECT_EQ(reply.at("type"), "ack") << json::serialize(reply);
    if (reply.contains("id")) {
        EXPECT_EQ(as_int(reply.at("id")), id);
    }
}

json::object body_error(const http_response& r) {
    const auto body = r.json();
    if (!body.is_object() || !body.as_object().contains("error") ||
        !body.as_object().at("error").is_object()) {
        ADD_FAILURE() << "no error object in body: " << r.body;
        return {};
    }
    return body.as_object().at("error").as_object();
}

}  // namespace

TEST(auth, auth_frame_with_a_valid_hs256_token_succeeds) {
    gateway_process gw(secret_args({"--node-id", "authnode"}));
    ws_client c;
    c.connect(gw.port());
    c.send_json(auth_token_frame(1, make_hs256_token(secret, valid_claims("alice"))));
    const auto reply = c.next_json();
    ASSERT_EQ(reply.at("type"), "auth.success") << json::serialize(reply);
    EXPECT_EQ(as_int(reply.at("id")), 1);
    const auto& p = payload_of(reply);
    EXPECT_EQ(p.at("user_id"), "alice");
    ASSERT_TRUE(p.at("session_id").is_string()) << json::serialize(reply);
    const std::string session(p.at("session_id").as_string());
    EXPECT_EQ(session.rfind("authnode", 0), 0u)
        << "session_id starts with the node id: " << session;
    expect_publish_acked(c, 2);

    // Another connection of the same user gets another session id.
    ws_client c2;
    c2.connect(gw.port());
    c2.send_json(auth_token_frame(1, make_hs256_token(secret, valid_claims("alice"))));
    const auto reply2 = c2.next_json();
    ASSERT_EQ(reply2.at("type"), "auth.success") << json::serialize(reply2);
    EXPECT_NE(payload_of(reply2).at("session_id"), json::value(session));
}

TEST(auth, each_bad_token_gets_its_error_code_and_the_connection_may_retry) {
    gateway_process gw(secret_args());
    const auto now = seconds_from_now(0);

    jwt_claims expired = valid_claims("alice");
    expired.exp = now - 3600;
    jwt_claims not_yet = valid_claims("alice");
    not_yet.nbf = now + 3600;
    jwt_claims no_sub = valid_claims("alice");
    no_sub.sub.reset();

    struct bad_case {
        std::string what;
        json::object payload;
        std::string code;
    };
    auto token = [](std::string t) {
        json::object p;
        p["token"] = std::move(t);
        return p;
    };
    json::object user_only;
    user_only["user_id"] = "alice";
    const std::vector<bad_case> cases = {
        {"signed with another secret",
         token(make_hs256_token("some-other-secret-0123456789abcdef", valid_claims("alice"))),
         "token_signature_invalid"},
        {"expired an hour ago", token(make_hs256_token(secret, expired)), "token_expired"},
        {"nbf an hour ahead", token(make_hs256_token(secret, not_yet)), "token_not_yet_valid"},
        {"alg none", token(make_alg_none_token(valid_claims("alice"))),
         "token_algorithm_not_allowed"},
        {"HS512 with the right secret", token(make_hs512_token(secret, valid_claims("alice"))),
         "token_algorithm_not_allowed"},
        {"no sub", token(make_hs256_token(secret, no_sub)), "token_subject_missing"},
        {"garbage", token("not-a-jwt"), "token_malformed"},
        {"three parts of junk", token("a.b.c"), "token_malformed"},
        {"empty payload", json::object{}, "token_missing"},
        {"user_id without token", user_only, "token_missing"},
    };

    ws_client c;
    c.connect(gw.port());
    std::int64_t id = 0;
    for (const auto& bad : cases) {
        c.send_json(make_frame("auth", ++id, bad.payload));
        const auto reply = c.next_json();
        EXPECT_EQ(reply.at("type"), "error") << bad.what << ": " << json::serialize(reply);
        EXPECT_EQ(error_code_of(reply), bad.code) << bad.what << ": " << json::serialize(reply);
        if (reply.contains("id")) {
            EXPECT_EQ(as_int(reply.at("id")), id) << bad.what;
        } else {
            ADD_FAILURE() << bad.what << ": the error does not echo the request id";
        }
    }
    // Still open and still unauthenticated: a good token now works.
    c.send_json(auth_token_frame(++id, make_hs256_token(secret, valid_claims("alice"))));
    const auto ok = c.next_json();
    EXPECT_EQ(ok.at("type"), "auth.success") << json::serialize(ok);
}

TEST(auth, exp_is_honoured_with_the_leeway) {
    jwt_claims recently_expired = valid_claims("alice");
    recently_expired.exp = seconds_from_now(-5);
    const auto token = make_hs256_token(secret, recently_expired);
    {
        gateway_process gw(secret_args());  // default leeway 30 s
        ws_client c;
        c.connect(gw.port());
        c.send_json(auth_token_frame(1, token));
        const auto reply = c.next_json();
        EXPECT_EQ(reply.at("type"), "auth.success")
            << "expired 5 s ago, within the 30 s leeway: " << json::serialize(reply);
    }
    {
        gateway_process gw(secret_args({"--jwt-leeway", "0"}));
        ws_client c;
        c.connect(gw.port());
        c.send_json(auth_token_frame(1, token));
        const auto reply = c.next_json();
        EXPECT_EQ(error_code_of(reply), "token_expired")
            << "expired 5 s ago with no leeway: " << json::serialize(reply);
    }
}

TEST(auth, a_second_auth_is_already_authenticated) {
    gateway_process gw(secret_args());
    ws_client c;
    c.connect(gw.port());
    c.send_json(auth_token_frame(1, make_hs256_token(secret, valid_claims("alice"))));
    ASSERT_EQ(c.next_json().at("type"), "auth.success");
    c.send_json(auth_token_frame(2, make_hs256_token(secret, valid_claims("bob"))));
    const auto reply = c.next_json();
    EXPECT_EQ(error_code_of(reply), "already_authenticated") << json::serialize(reply);
    EXPECT_EQ(as_int(reply.at("id")), 2);
}

TEST(auth, token_query_parameter_authenticates_on_upgrade) {
    gateway_process gw(secret_args());
    ws_client c;
    c.connect(gw.port(), "/ws?token=" + make_hs256_token(secret, valid_claims("alice")));
    c.send_json(subscribe_frame(1, {"q"}));
    EXPECT_EQ(c.expect_json("subscribed").at("type"), "subscribed");
    c.send_json(publish_frame(2, "q", "via query"));
    const auto msg = c.expect_json("message");
    EXPECT_EQ(payload_of(msg).at("from"), "alice") << json::serialize(msg);
}

TEST(auth, bearer_header_authenticates_on_upgrade) {
    gateway_process gw(secret_args());
    ws_client c;
    c.connect(gw.port(), "/ws",
              {{"Authorization", "Bearer " + make_hs256_token(secret, valid_claims("alice"))}});
    c.send_json(subscribe_frame(1, {"h"}));
    EXPECT_EQ(c.expect_json("subscribed").at("type"), "subscribed");
    c.send_json(publish_frame(2, "h", "via header"));
    const auto msg = c.expect_json("message");
    EXPECT_EQ(payload_of(msg).at("from"), "alice") << json::serialize(msg);
}

TEST(auth, bearer_header_wins_over_the_query_parameter) {
    gateway_process gw(secret_args());
    ws_client c;
    c.connect(
        gw.port(), "/ws?token=" + make_hs256_token(secret, valid_claims("from-query")),
        {{"Authorization", "Bearer " + make_hs256_token(secret, valid_claims("from-header"))}});
    c.send_json(subscribe_frame(1, {"w"}));
    c.expect_json("subscribed");
    c.send_json(publish_frame(2, "w", 1));
    const auto msg = c.expect_json("message");
    EXPECT_EQ(payload_of(msg).at("from"), "from-header") << json::serialize(msg);
}

TEST(auth, bad_token_on_the_upgrade_is_http_401_with_a_json_code) {
    gateway_process gw(secret_args());
    jwt_claims expired = valid_claims("alice");
    expired.exp = seconds_from_now(-3600);

    const auto by_query = http_upgrade(gw.port(), "/ws?token=" + make_hs256_token(secret, expired));
    EXPECT_EQ(by_query.status, 401) << by_query.body;
    auto error = body_error(by_query);
    EXPECT_EQ(error["code"], "token_expired") << by_query.body;
    EXPECT_TRUE(error["message"].is_string()) << by_query.body;

    const auto by_header = http_upgrade(
        gw.port(), "/ws",
        {{"Authorization",
          "Bearer " + make_hs256_token("wrong-secret-0123456789abcdef", valid_claims("alice"))}});
    EXPECT_EQ(by_header.status, 401) << by_header.body;
    EXPECT_EQ(body_error(by_header)["code"], "token_signature_invalid") << by_header.body;

    const auto garbage = http_upgrade(gw.port(), "/ws?token=garbage");
    EXPECT_EQ(garbage.status, 401) << garbage.body;
    EXPECT_EQ(body_error(garbage)["code"], "token_malformed") << garbage.body;

    const auto none =
        http_upgrade(gw.port(), "/ws?token=" + make_alg_none_token(valid_claims("alice")));
    EXPECT_EQ(none.status, 401) << none.body;
    EXPECT_EQ(body_error(none)["code"], "token_algorithm_not_allowed") << none.body;
}

TEST(auth, rs256_tokens_verify_against_the_public_key) {
    const auto keys = generate_rsa_key_pair();
    const auto other_keys = generate_rsa_key_pair();
    const temp_file public_key(keys.public_pem, ".pem");
    gateway_process gw({"--jwt-public-key", public_key.path()});

    ws_client c;
    c.connect(gw.port());
    // Signed by another key pair.
    c.send_json(
        auth_token_frame(1, make_rs256_token(other_keys.private_pem, valid_claims("alice"))));
    auto reply = c.next_json();
    EXPECT_EQ(error_code_of(reply), "token_signature_invalid") << json::serialize(reply);
    // HS256 "signed" with the public key as the secret: the classic algorithm confusion.
    c.send_json(auth_token_frame(2, make_hs256_token(keys.public_pem, valid_claims("alice"))));
    reply = c.next_json();
    EXPECT_EQ(error_code_of(reply), "token_algorithm_not_allowed") << json::serialize(reply);

    c.send_json(auth_token_frame(3, make_rs256_token(keys.private_pem, valid_claims("rsa-user"))));
    reply = c.next_json();
    ASSERT_EQ(reply.at("type"), "auth.success") << json::serialize(reply);
    EXPECT_EQ(payload_of(reply).at("user_id"), "rsa-user");
    expect_publish_acked(c, 4);
}

TEST(auth, before_auth_only_auth_register_and_ping_are_allowed) {
    gateway_process gw(secret_args());
    ws_client c;
    c.connect(gw.port());

    c.send_json(ping_frame(1));
    const auto pong = c.next_json();
    EXPECT_EQ(pong.at("type"), "pong") << json::serialize(pong);
    EXPECT_EQ(as_int(pong.at("id")), 1);

    const std::vector<json::object> refused = {
        subscribe_frame(2, {"room"}),
        publish_frame(3, "room", "x"),
        direct_frame(4, "bob", "x"),
        unsubscribe_frame(5, {"room"}),
    };
    for (const auto& frame : refused) {
        c.send_json(frame);
        const auto reply = c.next_json();
        EXPECT_EQ(error_code_of(reply), "not_authenticated")
            << json::serialize(frame) << " -> " << json::serialize(reply);
        EXPECT_EQ(reply.at("id"), frame.at("id")) << json::serialize(reply);
    }
    c.send_json(auth_token_frame(6, make_hs256_token(secret, valid_claims("alice"))));
    EXPECT_EQ(c.next_json().at("type"), "auth.success");
}

TEST(auth, unauthenticated_connection_is_closed_4001_after_the_auth_timeout) {
    gateway_process gw(secret_args({"--auth-timeout", "0.3"}));
    ws_client authed;
    authed.connect(gw.port(), "/ws?token=" + make_hs256_token(secret, valid_claims("alice")));
    ws_client anonymous;
    anonymous.connect(gw.port());

    const auto closed = anonymous.expect_close(std::chrono::seconds{5});
    ASSERT_EQ(closed.what, ws_event::kind::closed) << closed.describe();
    EXPECT_EQ(closed.close_code, 4001);
    EXPECT_EQ(closed.close_reason, "auth timeout");

    // The authenticated connection, older than the closed one, is still served.
    authed.send_json(ping_frame(1));
    EXPECT_EQ(authed.next_json().at("type"), "pong");
}

TEST(auth, failed_auth_attempts_do_not_stop_the_auth_timeout) {
    gateway_process gw(secret_args({"--auth-timeout", "0.3"}));
    ws_client c;
    c.connect(gw.port());
    c.send_json(auth_token_frame(1, "garbage"));
    EXPECT_EQ(error_code_of(c.next_json()), "token_malformed");
    const auto closed = c.expect_close(std::chrono::seconds{5});
    ASSERT_EQ(closed.what, ws_event::kind::closed) << closed.describe();
    EXPECT_EQ(closed.close_code, 4001);
}

TEST(auth, development_mode_auth_frame_with_user_id) {
    gateway_process gw({"--node-id", "devnode"});
    ws_client c;
    c.connect(gw.port());
    c.send_json(auth_user_frame(1, "alice"));
    const auto reply = c.next_json();
    ASSERT_EQ(reply.at("type"), "auth.success") << json::serialize(reply);
    EXPECT_EQ(as_int(reply.at("id")), 1);
    EXPECT_EQ(payload_of(reply).at("user_id"), "alice");
    ASSERT_TRUE(payload_of(reply).at("session_id").is_string());
    EXPECT_EQ(std::string(payload_of(reply).at("session_id").as_string()).rfind("devnode", 0), 0u);
    expect_publish_acked(c, 2);
}

TEST(auth, development_mode_register) {
    gateway_process gw;
    ws_client c;
    c.connect(gw.port());
    c.send_text(R"({"type":"register","userId":"alice"})");
    const auto reply = c.next_json();
    EXPECT_EQ(
        reply,
        json::parse(R"({"type":"registered","content":"Successfully registered"})").as_object());
    c.send_json(subscribe_frame(1, {"r"}));
    c.expect_json("subscribed");
    c.send_json(publish_frame(2, "r", 1));
    EXPECT_EQ(payload_of(c.expect_json("message")).at("from"), "alice");
}

TEST(auth, register_with_jwt_configured_is_token_missing) {
    gateway_process gw(secret_args());
    ws_client c;
    c.connect(gw.port());
    c.send_text(R"({"type":"register","userId":"alice"})");
    const auto reply = c.next_json();
    EXPECT_EQ(reply.at("type"), "error") << json::serialize(reply);
    EXPECT_EQ(error_code_of(reply), "token_missing") << json::serialize(reply);
    // A seed-002 frame's error also carries the seed's top-level "error" string.
    EXPECT_TRUE(reply.contains("error") && reply.at("error").is_string()) << json::serialize(reply);
    c.send_json(publish_frame(1, "r", 1));
    EXPECT_EQ(error_code_of(c.next_json()), "not_authenticated");
}

TEST(auth, user_id_query_parameter_does_not_authenticate_with_jwt_configured) {
    gateway_process gw(secret_args());
    // Either the upgrade is refused, or the connection is not authenticated.
    const auto r = http_upgrade(gw.port(), "/ws?user_id=alice");
    if (r.status != 101) {
        EXPECT_EQ(r.status, 401) << r.body;
        return;
    }
    ws_client c;
    c.connect(gw.port(), "/ws?user_id=alice");
    c.send_json(publish_frame(1, "x", 1));
    const auto reply = c.next_json();
    EXPECT_EQ(error_code_of(reply), "not_authenticated") << json::serialize(reply);
}
