#pragma once
// Client frames of docs/protocol.md as JSON values, accessors for the server's replies, and the
// one bounded-polling helper the suite allows itself (for state that has no event to await,
// such as a count on /health).

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace wsgate::test {

// {"type": type, "id": id, "payload": payload}; id < 0 leaves "id" out.
boost::json::object make_frame(std::string_view type, std::int64_t id,
                               boost::json::object payload = {});

boost::json::object subscribe_frame(std::int64_t id, const std::vector<std::string>& channels);
boost::json::object unsubscribe_frame(std::int64_t id, const std::vector<std::string>& channels);
boost::json::object publish_frame(std::int64_t id, std::string_view channel,
                                  boost::json::value data);
boost::json::object direct_frame(std::int64_t id, std::string_view to, boost::json::value data);
boost::json::object ping_frame(std::int64_t id);
boost::json::object auth_token_frame(std::int64_t id, std::string_view token);
boost::json::object auth_user_frame(std::int64_t id, std::string_view user_id);

// frame["payload"] as an object; throws (naming the frame) when absent.
const boost::json::object& payload_of(const boost::json::object& frame);
// payload.code of an error frame, or "" when absent.
std::string error_code_of(const boost::json::object& frame);
// A JSON integer as int64 (accepts uint64 too); throws when not an integer.
std::int64_t as_int(const boost::json::value& v);
// An array of strings as a vector.
std::vector<std::string> as_strings(const boost::json::value& v);

// RFC 3339 UTC with milliseconds: YYYY-MM-DDTHH:MM:SS.mmmZ, with plausible field ranges.
bool is_rfc3339_utc_millis(std::string_view ts);

// Polls `condition` every `interval` until it holds or `timeout` passes; returns the last
// result. Only for state with no event to wait on (counters, /health).
bool wait_until(const std::function<bool()>& condition,
                std::chrono::milliseconds timeout = std::chrono::milliseconds{5000},
                std::chrono::milliseconds interval = std::chrono::milliseconds{20});

}  // namespace wsgate::test
