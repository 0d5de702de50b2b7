#include "net/server.hpp"

#include "net/listener.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <thread>

namespace wsgate::net {

namespace json = boost::json;

namespace {

std::chrono::milliseconds pick_tick_interval(const server_settings& s) {
    // Fine enough to honour the shortest timeout within a quarter of it, never busier than
    // 100 Hz, never slower than once a second.
    const auto shortest = std::min({s.auth_timeout, s.idle_timeout, s.ping_interval});
    return std::clamp(shortest / 4, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
}

}  // namespace

server::server(server_settings settings, const core::authenticator* auth)
    : settings_(std::move(settings)),
      auth_(auth),
      tick_interval_(pick_tick_interval(settings_)),
      started_(std::chrono::steady_clock::now()) {
    if (settings_.workers == 0) settings_.workers = 1;
    settings_.close_timeout = std::min(settings_.close_timeout, settings_.shutdown_timeout);
    shards_.reserve(settings_.workers);
    for (unsigned i = 0; i < settings_.workers; ++i) {
        shards_.push_back(std::make_unique<shard>(i, *this));
    }
}

server::~server() {
    stop();
}

void server::start(core::broker& broker) {
    broker_ = &broker;
    broker_->start(*this);
    const auto address = boost::asio::ip::make_address(settings_.host);
    boost::asio::ip::tcp::endpoint endpoint(address, settings_.port);
    // The first listener picks the port (it may be 0); the others join it with SO_REUSEPORT.
    for (auto& s : shards_) {
        listeners_.push_back(std::make_unique<listener>(*s, endpoint));
        if (listeners_.size() == 1) {
            bound_port_ = listeners_.front()->port();
            endpoint.port(bound_port_);
        }
    }
    for (auto& l : listeners_) l->start();
    for (auto& s : shards_) s->start();
}

void server::drain(std::function<void()> done) {
    if (draining_.exchange(true)) return;
    spdlog::info("draining: closing {} connections with 1001, deadline {} ms", connections(),
                 settings_.shutdown_timeout.count());
    for (auto& s : shards_) {
        shard* target = s.get();
        boost::asio::post(target->context(), [target] { target->close_all_going_away(); });
    }
    // Watch from a plain thread: the shards keep serving (health says draining) meanwhile.
    std::thread([this, done = std::move(done)] {
        const auto deadline = std::chrono::steady_clock::now() + settings_.shutdown_timeout;
        while (connections() > 0 && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        if (connections() > 0) {
            spdlog::warn("shutdown timeout: {} connections still open", connections());
        }
        done();
    }).detach();
}

void server::stop() {
    for (auto& s : shards_) s->stop();
    for (auto& s : shards_) s->join();
}

bool server::try_reserve_connection() noexcept {
    std::size_t current = connections_.load(std::memory_order_relaxed);
    do {
        if (current >= settings_.max_connections) return false;
    } while (!connections_.compare_exchange_weak(current, current + 1, std::memory_order_relaxed));
    return true;
}

void server::release_connection() noexcept {
    connections_.fetch_sub(1, std::memory_order_relaxed);
}

void server::deliver(unsigned index, std::string_view topic, core::frame_ptr frame) {
    shard& target = *shards_[index];
    // With one shard there is no other thread whose deliveries could be overtaken, so the
    // publisher's thread fans out directly instead of going through the queue.
    if (shards_.size() == 1 && target.in_this_thread()) {
        target.fanout(topic, frame);
        return;
    }
    boost::asio::post(target.context(),
                      [&target, topic = std::string(topic), frame = std::move(frame)] {
                          target.fanout(topic, frame);
                      });
}

void server::post(unsigned index, std::function<void()> task) {
    boost::asio::post(shards_[index]->context(), std::move(task));
}

std::string server::health_json() const {
    // A node whose broker is down still serves its own clients: "degraded", not unavailable.
    const bool broker_up = broker_ != nullptr && broker_->available();
    const char* status = draining() ? "draining" : broker_up ? "ok" : "degraded";
    return json::serialize(json::object{
        {"status", status},
        {"connections", connections()},
        {"broker", broker_up ? "up" : "down"},
        {"broker_kind", broker_ != nullptr ? broker_->kind() : std::string_view("none")}});
}

std::string server::node_info_json() const {
    return json::serialize(
        json::object{{"node_id", settings_.node_id},
                     {"address", settings_.host + ":" + std::to_string(bound_port_)},
                     {"connections", connections()},
                     {"draining", draining()},
                     {"uptime_seconds", std::chrono::duration_cast<std::chrono::seconds>(
                                            std::chrono::steady_clock::now() - started_)
                                            .count()}});
}

std::string server::cluster_json() const {
    auto nodes = broker_ != nullptr ? broker_->cluster_nodes() : std::vector<std::string>{};
    if (nodes.empty()) nodes.push_back(node_info_json());
    std::string out = R"({"node_id":)";
    out += json::serialize(json::string(settings_.node_id));
    out += R"(,"nodes":[)";
    for (std::size_t i = 0; i < nodes.size(); ++i) {
        if (i != 0) out += ',';
        out += nodes[i];
    }
    out += "]}";
    return out;
}

std::string server::root_json() const {
    return json::serialize(json::object{{"service", "wsgate"},
                                        {"status", draining() ? "draining" : "ok"},
                                        {"version", "0.1.0"},
                                        {"node_id", settings_.node_id}});
}

std::string server::stats_json() const {
    std::uint64_t messages_in = 0, messages_out = 0, subscriptions = 0;
    for (const auto& s : shards_) {
        const auto& m = s->metrics();
        messages_in += m.messages_in.get();
        messages_out += m.messages_out.get();
        subscriptions +=
            static_cast<std::uint64_t>(std::max<std::int64_t>(0, m.subscriptions.get()));
    }
    const auto uptime = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::steady_clock::now() - started_)
                            .count();
    return json::serialize(json::object{{"node_id", settings_.node_id},
                                        {"gatewayId", settings_.node_id},
                                        {"connections", connections()},
                                        {"channels", broker_->channel_count()},
                                        {"subscriptions", subscriptions},
                                        {"messages_in", messages_in},
                                        {"messages_out", messages_out},
                                        {"workers", shards_.size()},
                                        {"uptime_seconds", uptime}});
}

std::string server::metrics_text() const {
    std::vector<const shard_metrics*> all;
    all.reserve(shards_.size());
    for (const auto& s : shards_) all.push_back(&s->metrics());
    const double uptime =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    std::string text =
        render_prometheus(all, broker_->channel_count(), draining(), uptime, settings_.node_id);
    text +=
        "# HELP wsgate_broker_up 1 while the broker can move messages.\n"
        "# TYPE wsgate_broker_up gauge\nwsgate_broker_up ";
    text += broker_->available() ? "1\n" : "0\n";
    text += broker_->metrics_text();
    return text;
}

}  // namespace wsgate::net
