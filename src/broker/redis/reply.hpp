#pragma once
// A Redis reply as our code sees it: copied out of hiredis, so it outlives the callback, and
// free of hiredis and Asio, so pure code (the cluster slot map) can read it.

#include <functional>
#include <string>
#include <vector>

namespace wsgate::broker::redis {

struct reply {
    enum class kind { nil, integer, string, status, error, array };
    kind type = kind::nil;
    long long integer = 0;
    std::string str;  // string, status and error text
    std::vector<reply> elements;

    bool is_error() const noexcept { return type == kind::error; }
};

// An error reply of our own making ("ERR connection lost"), shaped like one from Redis.
inline reply error_reply(std::string text) {
    reply r;
    r.type = reply::kind::error;
    r.str = std::move(text);
    return r;
}

using reply_handler = std::function<void(const reply&)>;

}  // namespace wsgate::broker::redis
