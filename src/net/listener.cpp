#include "net/listener.hpp"

#include "net/http_session.hpp"
#include "net/shard.hpp"
#include "net/tcp_socket.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/socket_base.hpp>

#include <sys/socket.h>

namespace wsgate::net {

namespace {
using reuse_port = boost::asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
}

listener::listener(shard& home, const boost::asio::ip::tcp::endpoint& endpoint)
    : shard_(home), acceptor_(home.context()), backoff_(home.context()) {
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(boost::asio::socket_base::reuse_address(true));
    acceptor_.set_option(reuse_port(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(boost::asio::socket_base::max_listen_connections);
}

std::uint16_t listener::port() const {
    return acceptor_.local_endpoint().port();
}

void listener::start() {
    do_accept();
}

void listener::do_accept() {
    acceptor_.async_accept(
        shard_.context(), [this](const boost::system::error_code& ec, tcp_socket socket) {
            if (ec == boost::asio::error::operation_aborted) return;
            if (ec) {
                // Out of descriptors or memory: wait a little instead of spinning.
                spdlog::warn("accept failed on shard {}: {}", shard_.index(), ec.message());
                backoff_.expires_after(std::chrono::milliseconds(50));
                backoff_.async_wait([this](const boost::system::error_code& e) {
                    if (!e) do_accept();
                });
                return;
            }
            std::make_shared<http_session>(shard_, std::move(socket))->start();
            do_accept();
        });
}

}  // namespace wsgate::net
