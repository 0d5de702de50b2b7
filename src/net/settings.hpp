#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace wsgate::net {

// What the network layer needs to know from the configuration (src/app/config.hpp fills it).
struct server_settings {
    std::string host = "0.0.0.0";
    std::uint16_t port = 8080;
    std::string node_id = "wsgate";
    unsigned workers = 1;

    std::chrono::milliseconds auth_timeout{10'000};
    std::chrono::milliseconds idle_timeout{60'000};
    std::chrono::milliseconds ping_interval{30'000};
    std::chrono::milliseconds close_timeout{5'000};  // wait for the peer's close reply
    std::chrono::milliseconds shutdown_timeout{10'000};
    std::chrono::milliseconds http_timeout{15'000};  // whole request, against slow clients

    std::size_t max_message_size = 8192;
    std::size_t max_channels = 100;
    std::size_t max_connections = 100'000;
    std::size_t max_outbound_bytes = 1 << 20;

    // Channels whose presence is kept (members, join/leave): name prefixes; "*" means all.
    std::vector<std::string> presence_prefixes;  // none by default: presence is opt-in

    bool presence_enabled(std::string_view channel) const {
        for (const auto& prefix : presence_prefixes) {
            if (prefix == "*" || channel.starts_with(prefix)) return true;
        }
        return false;
    }

    bool echo = false;
    std::size_t echo_max_message_size = 16 << 20;
};

}  // namespace wsgate::net
