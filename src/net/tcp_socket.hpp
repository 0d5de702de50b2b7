#pragma once

#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace wsgate::net {

// A TCP socket bound to its shard's io_context executor. Smaller than tcp::socket, whose
// type-erased any_io_executor costs ~40 bytes more in every connection.
using tcp_socket =
    boost::asio::basic_stream_socket<boost::asio::ip::tcp, boost::asio::io_context::executor_type>;

}  // namespace wsgate::net
