#include "support/delay_proxy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace wsgate::test {

namespace {

sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

// Copies `from` -> `to` until either side ends, sleeping `delay` before forwarding each chunk.
void pump(int from, int to, std::chrono::milliseconds delay) {
    char buffer[64 * 1024];
    for (;;) {
        const ssize_t n = ::recv(from, buffer, sizeof buffer, 0);
        if (n <= 0) break;
        if (delay.count() > 0) std::this_thread::sleep_for(delay);
        ssize_t sent = 0;
        while (sent < n) {
            const ssize_t w =
                ::send(to, buffer + sent, static_cast<std::size_t>(n - sent), MSG_NOSIGNAL);
            if (w <= 0) return;
            sent += w;
        }
    }
    ::shutdown(to, SHUT_WR);
}

}  // namespace

delay_proxy::delay_proxy(std::uint16_t target_port, std::chrono::milliseconds delay)
    : target_port_(target_port), delay_(delay) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (listen_fd_ < 0) throw std::runtime_error("delay_proxy: socket()");
    auto addr = loopback(0);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_fd_, 16) != 0) {
        ::close(listen_fd_);
        throw std::runtime_error("delay_proxy: bind/listen");
    }
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
}

delay_proxy::~delay_proxy() {
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    acceptor_.join();
    ::close(listen_fd_);
    {
        std::lock_guard lock(mutex_);
        for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : pumps_) t.join();
    for (int fd : fds_) ::close(fd);
}

void delay_proxy::accept_loop() {
    while (!stopping_) {
        const int client = ::accept(listen_fd_, nullptr, nullptr);
        if (client < 0) return;
        serve(client);
    }
}

void delay_proxy::serve(int client) {
    const int upstream = ::socket(AF_INET, SOCK_STREAM, 0);
    auto target = loopback(target_port_);
    if (upstream < 0 ||
        ::connect(upstream, reinterpret_cast<sockaddr*>(&target), sizeof target) != 0) {
        if (upstream >= 0) ::close(upstream);
        ::close(client);
        return;
    }
    const int one = 1;
    ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::setsockopt(upstream, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::lock_guard lock(mutex_);
    fds_.push_back(client);
    fds_.push_back(upstream);
    pumps_.emplace_back(pump, client, upstream, delay_);
    pumps_.emplace_back(pump, upstream, client, std::chrono::milliseconds{0});
}

}  // namespace wsgate::test
