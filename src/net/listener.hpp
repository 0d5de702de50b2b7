#pragma once
// Accepts TCP connections for one shard. Every shard has its own acceptor bound to the same
// address with SO_REUSEPORT, so the kernel spreads connections over the shards and no socket
// ever changes thread.

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

namespace wsgate::net {

class shard;

class listener {
public:
    listener(shard& home, const boost::asio::ip::tcp::endpoint& endpoint);
    std::uint16_t port() const;
    void start();

private:
    void do_accept();

    shard& shard_;
    boost::asio::ip::tcp::acceptor acceptor_;
    boost::asio::steady_timer backoff_;
};

}  // namespace wsgate::net
