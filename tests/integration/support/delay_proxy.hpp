#pragma once
// delay_proxy: a TCP proxy on 127.0.0.1 in front of a local port that holds back every chunk
// travelling client -> target for a fixed delay (replies pass at once). A test puts it between
// a node and Redis to widen a race window deterministically instead of hoping to hit it.
//
// Threads: one accepting, two per proxied connection; all stop and are joined in the
// destructor.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace wsgate::test {

class delay_proxy {
public:
    delay_proxy(std::uint16_t target_port, std::chrono::milliseconds delay);
    ~delay_proxy();
    delay_proxy(const delay_proxy&) = delete;
    delay_proxy& operator=(const delay_proxy&) = delete;

    std::uint16_t port() const { return port_; }

private:
    void accept_loop();
    void serve(int client);

    std::uint16_t target_port_;
    std::chrono::milliseconds delay_;
    int listen_fd_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<bool> stopping_{false};
    std::thread acceptor_;
    std::mutex mutex_;
    std::vector<int> fds_;  // every socket of every proxied connection, for shutdown
    std::vector<std::thread> pumps_;
};

}  // namespace wsgate::test
