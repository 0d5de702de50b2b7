// redis::connection against a real redis-server started by the harness: pipelining, binary
// safety, AUTH / SELECT, SUBSCRIBE and SSUBSCRIBE, and recovery from a killed server.
//
// Every test runs the io_context on the test thread with run_until(condition, deadline): no
// sleep is used to wait for anything. Reconnects use a short backoff so recovery is quick.
// spdlog's default logger is replaced by a capturing sink so the tests can check the lines the
// connection logs (and print them when a test fails).

#include "broker/redis/redis_connection.hpp"
#include "support/redis_process.hpp"

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <csignal>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace redis = wsgate::broker::redis;
namespace asio = boost::asio;
using wsgate::test::redis_process;
using namespace std::chrono_literals;
using strings = std::vector<std::string>;

namespace {

// Collects what the code under test logs.
class capture_sink final : public spdlog::sinks::base_sink<std::mutex> {
public:
    struct line {
        spdlog::level::level_enum level;
        std::string text;
    };

    std::vector<line> lines() {
        std::lock_guard lock(mutex_);
        return lines_;
    }

protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        lines_.push_back({msg.level, std::string(msg.payload.data(), msg.payload.size())});
    }
    void flush_() override {}

private:
    std::vector<line> lines_;
};

// An array reply as strings (integers in decimal, nil as "(nil)"), to compare in one line.
strings as_strings(const redis::reply& r) {
    strings out;
    for (const auto& e : r.elements) {
        switch (e.type) {
            case redis::reply::kind::integer:
                out.push_back(std::to_string(e.integer));
                break;
            case redis::reply::kind::nil:
                out.emplace_back("(nil)");
                break;
            default:
                out.push_back(e.str);
                break;
        }
    }
    return out;
}

std::string describe(const redis::reply& r) {
    switch (r.type) {
        case redis::reply::kind::nil:
            return "(nil)";
        case redis::reply::kind::integer:
            return "(integer) " + std::to_string(r.integer);
        case redis::reply::kind::string:
            return "\"" + r.str + "\"";
        case redis::reply::kind::status:
            return "(status) " + r.str;
        case redis::reply::kind::error:
            return "(error) " + r.str;
        case redis::reply::kind::array: {
            std::string out = "[";
            for (const auto& e : r.elements) out += (out.size() > 1 ? ", " : "") + describe(e);
            return out + "]";
        }
    }
    return "?";
}

// What a connection reported through its callbacks.
struct events {
    int connected = 0;
    int disconnected = 0;
    std::vector<redis::reply> messages;
    std::function<void()> on_connected;  // extra work on every (re)connect
};

redis::connection::callbacks callbacks_for(events& e) {
    redis::connection::callbacks cb;
    cb.on_connected = [&e] {
        ++e.connected;
        if (e.on_connected) e.on_connected();
    };
    cb.on_disconnected = [&e] { ++e.disconnected; };
    cb.on_message = [&e](const redis::reply& r) { e.messages.push_back(r); };
    return cb;
}

redis::connection::options fast_options() {
    redis::connection::options o;
    o.connect_timeout = 2000ms;
    o.backoff_initial = 20ms;
    o.backoff_max = 200ms;
    return o;
}

class redis_connection_test : public ::testing::Test {
protected:
    void SetUp() override {
        // As main() does: hiredis writes with write(2), so a dead peer must not kill us.
        ::signal(SIGPIPE, SIG_IGN);
        previous_logger_ = spdlog::default_logger();
        sink_ = std::make_shared<capture_sink>();
        auto logger = std::make_shared<spdlog::logger>("redis-test", sink_);
        logger->set_level(spdlog::level::debug);
        spdlog::set_default_logger(logger);
    }

    void TearDown() override {
        if (HasFailure()) {
            std::cerr << "---- captured log ----\n";
            for (const auto& l : sink_->lines()) {
                std::cerr << spdlog::level::to_string_view(l.level).data() << ": " << l.text
                          << "\n";
            }
        }
        spdlog::set_default_logger(previous_logger_);
    }

    // Runs the io_context until `done()` holds; false at the deadline. The work guard keeps
    // run_one_for blocking while there is nothing to do, so this never spins.
    template <class Condition>
    bool run_until(Condition done, std::chrono::milliseconds timeout = 10s) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (!done()) {
            const auto now = std::chrono::steady_clock::now();
            if (now >= deadline) return false;
            io_.run_one_for(std::min<std::chrono::steady_clock::duration>(deadline - now, 50ms));
        }
        return true;
    }

    // One command, run until its reply.
    redis::reply call(redis::connection& c, strings argv) {
        const auto what = argv.empty() ? std::string() : argv.front();
        std::optional<redis::reply> out;
        c.command(std::move(argv), [&](const redis::reply& r) { out = r; });
        if (!run_until([&] { return out.has_value(); })) {
            ADD_FAILURE() << "no reply to " << what << " on " << c.name();
            redis::reply timeout;
            timeout.type = redis::reply::kind::error;
            timeout.str = "(test) no reply";
            return timeout;
        }
        return *out;
    }

    int log_count(spdlog::level::level_enum level, std::string_view part) {
        int n = 0;
        for (const auto& l : sink_->lines()) {
            if (l.level == level && l.text.find(part) != std::string::npos) ++n;
        }
        return n;
    }

    static redis::endpoint endpoint_of(const redis_process& server) {
        auto e = redis::parse_endpoint(server.url());
        EXPECT_TRUE(e.has_value()) << server.url();
        return e.value_or(redis::endpoint{});
    }

    asio::io_context io_;
    asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
    std::shared_ptr<capture_sink> sink_;
    std::shared_ptr<spdlog::logger> previous_logger_;
};

}  // namespace

TEST_F(redis_connection_test, connects_and_answers_ping) {
    redis_process server;
    events ev;
    redis::connection c(io_, endpoint_of(server), callbacks_for(ev), "ping", fast_options());
    EXPECT_FALSE(c.connected());
    EXPECT_EQ(c.name(), "ping");
    c.start();
    ASSERT_TRUE(run_until([&] { return ev.connected == 1; }));
    EXPECT_TRUE(c.connected());

    const auto r = call(c, {"PING"});
    EXPECT_EQ(r.type, redis::reply::kind::status) << describe(r);
    EXPECT_EQ(r.str, "PONG");
    EXPECT_EQ(log_count(spdlog::level::info, "redis ping: connected to 127.0.0.1:"), 1);
    EXPECT_EQ(log_count(spdlog::level::warn, "redis ping"), 0);

    // A host name is resolved without blocking the loop.
    auto by_name = endpoint_of(server);
    by_name.host = "localhost";
    events ev2;
    redis::connection named(io_, by_name, callbacks_for(ev2), "by-name", fast_options());
    named.start();
    ASSERT_TRUE(run_until([&] { return ev2.connected == 1; }));
    EXPECT_EQ(call(named, {"PING"}).str, "PONG");
}

TEST_F(redis_connection_test, pipelined_incrs_complete_in_order_with_the_right_values) {
    redis_process server;
    events ev;
    redis::connection c(io_, endpoint_of(server), callbacks_for(ev), "pipeline", fast_options());
    c.start();
    ASSERT_TRUE(run_until([&] { return c.connected(); }));

    // All 1000 are queued before the loop runs again: nothing waits for an earlier reply.
    constexpr int count = 1000;
    std::vector<long long> values;
    for (int i = 0; i < count; ++i) {
        c.command({"INCR", "counter"}, [&](const redis::reply& r) {
            values.push_back(r.type == redis::reply::kind::integer ? r.integer : -1);
        });
    }
    EXPECT_TRUE(values.empty());
    ASSERT_TRUE(run_until([&] { return values.size() == count; }));
    std::vector<long long> expected(count);
    for (int i = 0; i < count; ++i) expected[static_cast<std::size_t>(i)] = i + 1;
    EXPECT_EQ(values, expected);
}

TEST_F(redis_connection_test, set_and_get_are_binary_safe) {
    redis_process server;
    events ev;
    redis::connection c(io_, endpoint_of(server), callbacks_for(ev), "binary", fast_options());
    c.start();
    ASSERT_TRUE(run_until([&] { return c.connected(); }));

    const std::string key("bin\0key", 7);
    const std::string value("a\0b\r\n$3\xff", 9);
    const auto set = call(c, {"SET", key, value});
    EXPECT_EQ(set.type, redis::reply::kind::status) << describe(set);
    EXPECT_EQ(set.str, "OK");

    const auto get = call(c, {"GET", key});
    ASSERT_EQ(get.type, redis::reply::kind::string) << describe(get);
    EXPECT_EQ(get.str, value);
    EXPECT_EQ(get.str.size(), 9u);

    EXPECT_EQ(call(c, {"STRLEN", key}).integer, 9);
    // The key without its tail is another key.
    EXPECT_EQ(call(c, {"EXISTS", "bin"}).integer, 0);
    EXPECT_EQ(call(c, {"GET", "missing"}).type, redis::reply::kind::nil);
}

TEST_F(redis_connection_test, auth_with_the_right_password_and_with_a_username) {
    redis_process server({"--requirepass", "s3cret"});
    events ev;
    auto where = endpoint_of(server);
    where.password = "s3cret";
    redis::connection c(io_, where, callbacks_for(ev), "auth", fast_options());
    c.start();
    ASSERT_TRUE(run_until([&] { return ev.connected == 1; }));
    const auto who = call(c, {"ACL", "WHOAMI"});
    EXPECT_EQ(who.str, "default") << describe(who);

    // Redis 6 ACL form: AUTH <user> <password>, from a URL.
    auto url_where =
        redis::parse_endpoint("redis://default:s3cret@127.0.0.1:" + std::to_string(server.port()));
    ASSERT_TRUE(url_where.has_value());
    events ev2;
    redis::connection with_user(io_, *url_where, callbacks_for(ev2), "auth-user", fast_options());
    with_user.start();
    ASSERT_TRUE(run_until([&] { return ev2.connected == 1; }));
    EXPECT_EQ(call(with_user, {"PING"}).str, "PONG");
}

TEST_F(redis_connection_test, wrong_or_missing_password_never_connects_logs_and_keeps_retrying) {
    redis_process server({"--requirepass", "s3cret"});
    events admin_ev;
    auto admin_where = endpoint_of(server);
    admin_where.password = "s3cret";
    redis::connection admin(io_, admin_where, callbacks_for(admin_ev), "admin", fast_options());
    admin.start();
    ASSERT_TRUE(run_until([&] { return admin.connected(); }));
    const auto connections_received = [&] {
        const auto info = call(admin, {"INFO", "stats"}).str;
        const std::string field = "total_connections_received:";
        const auto at = info.find(field);
        return at == std::string::npos ? -1 : std::stoll(info.substr(at + field.size()));
    };
    const auto before = connections_received();

    events wrong_ev;
    auto wrong_where = endpoint_of(server);
    wrong_where.password = "wrong";
    redis::connection wrong(io_, wrong_where, callbacks_for(wrong_ev), "wrong-pw", fast_options());
    events none_ev;
    redis::connection none(io_, endpoint_of(server), callbacks_for(none_ev), "no-pw",
                           fast_options());
    wrong.start();
    none.start();

    // One warn line per failed attempt, with the connection's name and Redis' reason.
    ASSERT_TRUE(run_until([&] {
        return log_count(spdlog::level::warn, "redis wrong-pw: cannot connect") >= 3 &&
               log_count(spdlog::level::warn, "redis no-pw: cannot connect") >= 3;
    }));
    EXPECT_EQ(log_count(spdlog::level::warn, "redis wrong-pw: cannot connect"),
              log_count(spdlog::level::warn, "AUTH failed: WRONGPASS"));
    EXPECT_EQ(log_count(spdlog::level::warn, "redis no-pw: cannot connect"),
              log_count(spdlog::level::warn, "PING failed: NOAUTH"));
    EXPECT_EQ(log_count(spdlog::level::warn, "s3cret"), 0);
    EXPECT_EQ(log_count(spdlog::level::warn, "wrong:"), 0);
    EXPECT_EQ(wrong_ev.connected, 0);
    EXPECT_EQ(none_ev.connected, 0);
    EXPECT_EQ(wrong_ev.disconnected, 0);  // never connected, so never "disconnected"
    EXPECT_FALSE(wrong.connected());
    EXPECT_FALSE(none.connected());
    // The retries really reached the server.
    EXPECT_GE(connections_received() - before, 6);
}

TEST_F(redis_connection_test, selects_the_database_before_reporting_connected) {
    redis_process server;
    events ev3;
    auto where = endpoint_of(server);
    where.database = 3;
    redis::connection db3(io_, where, callbacks_for(ev3), "db3", fast_options());
    std::string info_on_connect;
    ev3.on_connected = [&] {
        db3.command({"CLIENT", "INFO"}, [&](const redis::reply& r) { info_on_connect = r.str; });
    };
    db3.start();
    ASSERT_TRUE(run_until([&] { return !info_on_connect.empty(); }));
    EXPECT_NE(info_on_connect.find(" db=3 "), std::string::npos) << info_on_connect;
    EXPECT_EQ(call(db3, {"SET", "where", "three"}).str, "OK");

    events ev0;
    redis::connection db0(io_, endpoint_of(server), callbacks_for(ev0), "db0", fast_options());
    db0.start();
    ASSERT_TRUE(run_until([&] { return db0.connected(); }));
    EXPECT_EQ(call(db0, {"GET", "where"}).type, redis::reply::kind::nil);
    EXPECT_EQ(call(db0, {"SELECT", "3"}).str, "OK");
    EXPECT_EQ(call(db0, {"GET", "where"}).str, "three");
}

TEST_F(redis_connection_test, subscribe_confirms_to_done_and_delivers_messages_to_on_message) {
    redis_process server;
    events sub_ev;
    events pub_ev;
    redis::connection sub(io_, endpoint_of(server), callbacks_for(sub_ev), "sub", fast_options());
    redis::connection pub(io_, endpoint_of(server), callbacks_for(pub_ev), "pub", fast_options());
    sub.start();
    pub.start();
    ASSERT_TRUE(run_until([&] { return sub.connected() && pub.connected(); }));

    std::vector<strings> confirmations;
    const auto record = [&](const redis::reply& r) { confirmations.push_back(as_strings(r)); };
    sub.command({"SUBSCRIBE", "news", "sport"}, record);
    ASSERT_TRUE(run_until([&] { return confirmations.size() == 2; }));
    EXPECT_EQ(confirmations[0], (strings{"subscribe", "news", "1"}));
    EXPECT_EQ(confirmations[1], (strings{"subscribe", "sport", "2"}));

    const std::string payload("hello\0world", 11);
    EXPECT_EQ(call(pub, {"PUBLISH", "news", payload}).integer, 1);
    ASSERT_TRUE(run_until([&] { return sub_ev.messages.size() == 1; }));
    EXPECT_EQ(as_strings(sub_ev.messages[0]), (strings{"message", "news", payload}));

    sub.command({"PSUBSCRIBE", "sp*"}, record);
    ASSERT_TRUE(run_until([&] { return confirmations.size() == 3; }));
    EXPECT_EQ(confirmations[2], (strings{"psubscribe", "sp*", "3"}));
    EXPECT_EQ(call(pub, {"PUBLISH", "sport", "goal"}).integer, 2);
    ASSERT_TRUE(run_until([&] { return sub_ev.messages.size() == 3; }));
    EXPECT_EQ(as_strings(sub_ev.messages[1]), (strings{"message", "sport", "goal"}));
    EXPECT_EQ(as_strings(sub_ev.messages[2]), (strings{"pmessage", "sp*", "sport", "goal"}));

    // In subscribed mode (RESP2) PING answers an array and other commands an error, in order.
    const auto pong = call(sub, {"PING"});
    EXPECT_EQ(as_strings(pong), (strings{"pong", ""})) << describe(pong);
    const auto refused = call(sub, {"GET", "x"});
    EXPECT_TRUE(refused.is_error()) << describe(refused);

    // UNSUBSCRIBE without arguments: one confirmation per channel, then PUNSUBSCRIBE: one.
    // The PING after them proves the count: its reply is back to a plain status.
    sub.command({"UNSUBSCRIBE"}, record);
    sub.command({"PUNSUBSCRIBE"}, record);
    const auto normal = call(sub, {"PING"});
    EXPECT_EQ(normal.type, redis::reply::kind::status) << describe(normal);
    ASSERT_EQ(confirmations.size(), 6u);
    EXPECT_EQ(confirmations[3][0], "unsubscribe");
    EXPECT_EQ(confirmations[4][0], "unsubscribe");
    EXPECT_EQ(confirmations[5], (strings{"punsubscribe", "sp*", "0"}));
    EXPECT_EQ(call(pub, {"PUBLISH", "news", "gone"}).integer, 0);
    EXPECT_EQ(sub_ev.messages.size(), 3u);

    // Not subscribed any more: an array that looks like a message is an ordinary reply.
    EXPECT_EQ(call(sub, {"RPUSH", "list", "message", "a", "b"}).integer, 3);
    EXPECT_EQ(as_strings(call(sub, {"LRANGE", "list", "0", "-1"})), (strings{"message", "a", "b"}));
    EXPECT_EQ(sub_ev.messages.size(), 3u);
}

TEST_F(redis_connection_test, ssubscribe_confirms_to_done_and_delivers_smessages) {
    redis_process server;
    events sub_ev;
    events pub_ev;
    redis::connection sub(io_, endpoint_of(server), callbacks_for(sub_ev), "ssub", fast_options());
    redis::connection pub(io_, endpoint_of(server), callbacks_for(pub_ev), "spub", fast_options());
    sub.start();
    pub.start();
    ASSERT_TRUE(run_until([&] { return sub.connected() && pub.connected(); }));

    std::vector<strings> confirmations;
    const auto record = [&](const redis::reply& r) { confirmations.push_back(as_strings(r)); };
    sub.command({"SSUBSCRIBE", "orders"}, record);
    ASSERT_TRUE(run_until([&] { return confirmations.size() == 1; }));
    EXPECT_EQ(confirmations[0], (strings{"ssubscribe", "orders", "1"}));

    EXPECT_EQ(call(pub, {"SPUBLISH", "orders", "o-1"}).integer, 1);
    ASSERT_TRUE(run_until([&] { return sub_ev.messages.size() == 1; }));
    EXPECT_EQ(as_strings(sub_ev.messages[0]), (strings{"smessage", "orders", "o-1"}));

    // Sharded and classic channels of the same name are distinct, on one connection.
    sub.command({"SUBSCRIBE", "orders"}, record);
    ASSERT_TRUE(run_until([&] { return confirmations.size() == 2; }));
    EXPECT_EQ(confirmations[1][0], "subscribe");
    EXPECT_EQ(call(pub, {"PUBLISH", "orders", "classic"}).integer, 1);
    EXPECT_EQ(call(pub, {"SPUBLISH", "orders", "sharded"}).integer, 1);
    ASSERT_TRUE(run_until([&] { return sub_ev.messages.size() == 3; }));
    EXPECT_EQ(as_strings(sub_ev.messages[1]), (strings{"message", "orders", "classic"}));
    EXPECT_EQ(as_strings(sub_ev.messages[2]), (strings{"smessage", "orders", "sharded"}));

    // Several channels in one SSUBSCRIBE: one confirmation each.
    sub.command({"SSUBSCRIBE", "{t}a", "{t}b"}, record);
    ASSERT_TRUE(run_until([&] { return confirmations.size() == 4; }));
    EXPECT_EQ(confirmations[2], (strings{"ssubscribe", "{t}a", "2"}));
    EXPECT_EQ(confirmations[3], (strings{"ssubscribe", "{t}b", "3"}));

    // SUNSUBSCRIBE one, then all (two left), then UNSUBSCRIBE all; PING proves the counts.
    sub.command({"SUNSUBSCRIBE", "orders"}, record);
    sub.command({"SUNSUBSCRIBE"}, record);
    sub.command({"UNSUBSCRIBE"}, record);
    const auto normal = call(sub, {"PING"});
    EXPECT_EQ(normal.type, redis::reply::kind::status) << describe(normal);
    ASSERT_EQ(confirmations.size(), 8u);
    EXPECT_EQ(confirmations[4], (strings{"sunsubscribe", "orders", "2"}));
    EXPECT_EQ(confirmations[5][0], "sunsubscribe");
    EXPECT_EQ(confirmations[6][0], "sunsubscribe");
    EXPECT_EQ(confirmations[7], (strings{"unsubscribe", "orders", "0"}));
    EXPECT_EQ(call(pub, {"SPUBLISH", "{t}a", "late"}).integer, 0);
    EXPECT_EQ(sub_ev.messages.size(), 3u);
}

TEST_F(redis_connection_test, a_command_while_the_server_is_down_fails_with_not_connected) {
    redis_process server;
    const auto where = endpoint_of(server);
    server.kill();

    events ev;
    redis::connection c(io_, where, callbacks_for(ev), "down", fast_options());
    c.start();
    std::optional<redis::reply> r;
    c.command({"PING"}, [&](const redis::reply& x) { r = x; });
    EXPECT_FALSE(r.has_value()) << "the error reply is posted, not delivered inline";
    ASSERT_TRUE(run_until([&] { return r.has_value(); }));
    EXPECT_TRUE(r->is_error());
    EXPECT_EQ(r->str, "ERR not connected");

    // It keeps trying, one warn line per attempt.
    ASSERT_TRUE(run_until(
        [&] { return log_count(spdlog::level::warn, "redis down: cannot connect") >= 3; }));
    EXPECT_EQ(ev.connected, 0);
    EXPECT_EQ(ev.disconnected, 0);
}

TEST_F(redis_connection_test, survives_a_killed_server_and_resubscribes_on_reconnect) {
    redis_process server;
    events sub_ev;
    events pub_ev;
    events probe_ev;
    redis::connection sub(io_, endpoint_of(server), callbacks_for(sub_ev), "sub", fast_options());
    redis::connection pub(io_, endpoint_of(server), callbacks_for(pub_ev), "pub", fast_options());
    redis::connection probe(io_, endpoint_of(server), callbacks_for(probe_ev), "probe",
                            fast_options());
    // The owner restores its subscriptions in on_connected, as the broker does.
    int subscribed = 0;
    sub_ev.on_connected = [&] {
        sub.command({"SUBSCRIBE", "alerts"}, [&](const redis::reply& r) {
            if (!r.is_error()) ++subscribed;
        });
    };
    sub.start();
    pub.start();
    probe.start();
    ASSERT_TRUE(run_until([&] { return subscribed == 1 && pub.connected() && probe.connected(); }));

    EXPECT_EQ(call(pub, {"PUBLISH", "alerts", "before"}).integer, 1);
    ASSERT_TRUE(run_until([&] { return sub_ev.messages.size() == 1; }));

    // A command that is surely on the server, waiting, when it dies.
    std::optional<redis::reply> blocked;
    pub.command({"BLPOP", "never", "0"}, [&](const redis::reply& r) { blocked = r; });
    ASSERT_TRUE(run_until([&] {
        return call(probe, {"CLIENT", "LIST"}).str.find("cmd=blpop") != std::string::npos;
    }));

    server.kill();
    ASSERT_TRUE(run_until([&] {
        return sub_ev.disconnected == 1 && pub_ev.disconnected == 1 && blocked.has_value();
    }));
    EXPECT_TRUE(blocked->is_error());
    EXPECT_EQ(blocked->str, "ERR connection lost");
    EXPECT_FALSE(sub.connected());
    EXPECT_FALSE(pub.connected());
    EXPECT_EQ(log_count(spdlog::level::warn, "redis sub: lost the connection"), 1);
    const auto down = call(pub, {"PING"});
    EXPECT_EQ(down.str, "ERR not connected");

    // Let a few reconnect attempts fail before the server comes back.
    ASSERT_TRUE(run_until(
        [&] { return log_count(spdlog::level::warn, "redis pub: cannot connect") >= 2; }));

    const auto restarted = std::chrono::steady_clock::now();
    server.restart();
    ASSERT_TRUE(run_until(
        [&] { return sub_ev.connected == 2 && pub_ev.connected == 2 && subscribed == 2; }));
    // Back within the backoff (at most 200 ms here), not after some long timeout.
    EXPECT_LT(std::chrono::steady_clock::now() - restarted, 3s);
    EXPECT_EQ(sub_ev.disconnected, 1);
    EXPECT_EQ(log_count(spdlog::level::info, "redis sub: connected to"), 2);

    EXPECT_EQ(call(pub, {"PING"}).str, "PONG");
    EXPECT_EQ(call(pub, {"PUBLISH", "alerts", "after"}).integer, 1);
    ASSERT_TRUE(run_until([&] { return sub_ev.messages.size() == 2; }));
    EXPECT_EQ(as_strings(sub_ev.messages[1]), (strings{"message", "alerts", "after"}));
}

TEST_F(redis_connection_test, connect_timeout_covers_a_server_that_never_answers) {
    // A listener that accepts at the TCP level (backlog) but never answers anything.
    asio::ip::tcp::acceptor silent(io_, {asio::ip::make_address("127.0.0.1"), 0});
    redis::endpoint where;
    where.host = "127.0.0.1";
    where.port = silent.local_endpoint().port();

    auto opts = fast_options();
    opts.connect_timeout = 100ms;
    events ev;
    redis::connection c(io_, where, callbacks_for(ev), "silent", opts);
    c.start();
    ASSERT_TRUE(run_until(
        [&] { return log_count(spdlog::level::warn, "redis silent: cannot connect") >= 2; }));
    EXPECT_EQ(log_count(spdlog::level::warn, "timed out after 100 ms"),
              log_count(spdlog::level::warn, "redis silent: cannot connect"));
    EXPECT_EQ(ev.connected, 0);
}

TEST_F(redis_connection_test, stop_fails_pending_commands_and_stays_down) {
    redis_process server;
    events ev;
    redis::connection c(io_, endpoint_of(server), callbacks_for(ev), "stopper", fast_options());
    c.start();
    ASSERT_TRUE(run_until([&] { return c.connected(); }));

    std::optional<redis::reply> blocked;
    c.command({"BLPOP", "never", "0"}, [&](const redis::reply& r) { blocked = r; });
    c.stop();
    ASSERT_TRUE(blocked.has_value()) << "stop() fails what is pending before it returns";
    EXPECT_EQ(blocked->str, "ERR connection lost");
    EXPECT_FALSE(c.connected());
    EXPECT_EQ(call(c, {"PING"}).str, "ERR not connected");

    // Time for many reconnects if there were any: there must be none.
    io_.run_for(300ms);
    EXPECT_EQ(ev.connected, 1);
    EXPECT_EQ(ev.disconnected, 0);
    EXPECT_EQ(log_count(spdlog::level::info, "redis stopper: connected"), 1);
    c.start();  // no restart after stop()
    io_.run_for(100ms);
    EXPECT_EQ(ev.connected, 1);
}

TEST_F(redis_connection_test, destroying_the_connection_inside_a_callback_is_safe) {
    redis_process server;
    events ev;
    auto c = std::make_unique<redis::connection>(io_, endpoint_of(server), callbacks_for(ev),
                                                 "doomed", fast_options());
    c->start();
    ASSERT_TRUE(run_until([&] { return c->connected(); }));

    int replies = 0;
    for (int i = 0; i < 100; ++i) {
        c->command({"PING"}, [&](const redis::reply&) {
            if (++replies == 10) c.reset();
        });
    }
    ASSERT_TRUE(run_until([&] { return c == nullptr; }));
    EXPECT_EQ(replies, 10);

    // A message delivered to a connection destroyed in on_message.
    events sub_ev;
    std::unique_ptr<redis::connection> sub;
    auto cb = callbacks_for(sub_ev);
    cb.on_message = [&](const redis::reply& r) {
        sub_ev.messages.push_back(r);
        sub.reset();
    };
    sub = std::make_unique<redis::connection>(io_, endpoint_of(server), cb, "doomed-sub",
                                              fast_options());
    events pub_ev;
    redis::connection pub(io_, endpoint_of(server), callbacks_for(pub_ev), "pub", fast_options());
    sub->start();
    pub.start();
    int confirmed = 0;
    ASSERT_TRUE(run_until([&] { return sub->connected() && pub.connected(); }));
    sub->command({"SUBSCRIBE", "x"}, [&](const redis::reply&) { ++confirmed; });
    ASSERT_TRUE(run_until([&] { return confirmed == 1; }));
    // Two messages in one read: the second must not reach the destroyed connection.
    pub.command({"PUBLISH", "x", "1"});
    pub.command({"PUBLISH", "x", "2"});
    ASSERT_TRUE(run_until([&] { return sub == nullptr; }));
    EXPECT_EQ(call(pub, {"PING"}).str, "PONG");
    EXPECT_EQ(sub_ev.messages.size(), 1u);
}
