// parse_endpoint: redis:// URLs and the seeds' host[:port] forms; anything else is nullopt.

#include "broker/redis/endpoint.hpp"

#include <gtest/gtest.h>

#include <string>

using wsgate::broker::redis::endpoint;
using wsgate::broker::redis::parse_endpoint;

namespace {

endpoint parsed(const std::string& text) {
    const auto e = parse_endpoint(text);
    EXPECT_TRUE(e.has_value()) << text;
    return e.value_or(endpoint{});
}

}  // namespace

TEST(redis_endpoint, url_with_host_only_takes_the_defaults) {
    const auto e = parsed("redis://cache.internal");
    EXPECT_EQ(e.host, "cache.internal");
    EXPECT_EQ(e.port, 6379);
    EXPECT_EQ(e.password, "");
    EXPECT_EQ(e.username, "");
    EXPECT_EQ(e.database, 0);
}

TEST(redis_endpoint, url_with_port_and_database) {
    const auto e = parsed("redis://host:6380/2");
    EXPECT_EQ(e.host, "host");
    EXPECT_EQ(e.port, 6380);
    EXPECT_EQ(e.database, 2);
    EXPECT_EQ(e.password, "");
}

TEST(redis_endpoint, url_with_password_only) {
    const auto e = parsed("redis://:pw@h:1");
    EXPECT_EQ(e.host, "h");
    EXPECT_EQ(e.port, 1);
    EXPECT_EQ(e.username, "");
    EXPECT_EQ(e.password, "pw");
    EXPECT_EQ(e.database, 0);
}

TEST(redis_endpoint, url_with_user_password_and_database) {
    const auto e = parsed("redis://user:pw@h:1/3");
    EXPECT_EQ(e.host, "h");
    EXPECT_EQ(e.port, 1);
    EXPECT_EQ(e.username, "user");
    EXPECT_EQ(e.password, "pw");
    EXPECT_EQ(e.database, 3);
}

// RFC 3986: '@' and ':' in a password are percent-encoded; a raw '@' there is not a URL.
TEST(redis_endpoint, userinfo_is_percent_decoded_and_a_raw_at_sign_is_refused) {
    EXPECT_EQ(parsed("redis://:p%40ss%3Aw@h").password, "p@ss:w");
    EXPECT_EQ(parsed("redis://:a%40b@h:7").password, "a@b");
    EXPECT_EQ(parsed("redis://:a%40b@h:7").port, 7);
    EXPECT_FALSE(parse_endpoint("redis://:a@b@h:7").has_value());
}

TEST(redis_endpoint, scheme_is_case_insensitive_and_an_empty_path_is_database_0) {
    const auto e = parsed("REDIS://h:7000/");
    EXPECT_EQ(e.host, "h");
    EXPECT_EQ(e.port, 7000);
    EXPECT_EQ(e.database, 0);
}

TEST(redis_endpoint, bracketed_ipv6) {
    const auto e = parsed("redis://[::1]:6390/1");
    EXPECT_EQ(e.host, "::1");
    EXPECT_EQ(e.port, 6390);
    EXPECT_EQ(e.database, 1);
    EXPECT_EQ(parsed("[::1]").host, "::1");
}

TEST(redis_endpoint, seed_forms_host_and_host_port) {
    const auto a = parsed("redis-a");
    EXPECT_EQ(a.host, "redis-a");
    EXPECT_EQ(a.port, 6379);
    const auto b = parsed("10.0.0.5:7001");
    EXPECT_EQ(b.host, "10.0.0.5");
    EXPECT_EQ(b.port, 7001);
    EXPECT_EQ(b.database, 0);
    EXPECT_EQ(b.password, "");
}

TEST(redis_endpoint, bad_inputs_are_nullopt) {
    const char* bad[] = {
        "",                       // empty
        "redis://",               // no host
        "redis://:pw@",           // no host after userinfo
        ":6379",                  // no host
        "host:0",                 // port 0
        "host:70000",             // port out of range
        "host:65536",             // port out of range
        "host:abc",               // port not a number
        "host:",                  // empty port
        "host:-1",                // negative port
        "host:+80",               // sign
        "redis://h:0",            // port 0
        "redis://h:70000",        // port out of range
        "redis://h:x1/2",         // port not a number
        "rediss://h:6380",        // TLS is not supported yet
        "http://h:6379",          // another scheme
        "redis://h/db",           // db not a number
        "redis://h/-1",           // negative db
        "redis://h/1x",           // trailing garbage
        "redis://h/2?timeout=1",  // query strings are not supported
        "redis://user@h",         // userinfo without ':'
        "redis://:%zz@h",         // bad percent escape
        "redis://:%4@h",          // truncated percent escape
        "::1",                    // bare IPv6 is ambiguous
        "[::1",                   // unclosed bracket
        "host/2",                 // db needs the URL form
        "pw@host",                // so does a password
        "ho st",                  // whitespace
        "redis://h:1:2",          // two ports
    };
    for (const char* text : bad) {
        EXPECT_FALSE(parse_endpoint(text).has_value()) << '"' << text << '"';
    }
}
