#include "broker/redis/router.hpp"

#include "broker/redis/hash_slot.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <set>
#include <stdexcept>

namespace wsgate::broker::redis {

namespace asio = boost::asio;

namespace {

constexpr int max_redirects = 5;
constexpr std::size_t max_waiting_per_server = 100'000;
constexpr std::size_t subscribe_batch = 1000;

}  // namespace

router::router(asio::io_context& context, router_settings settings, callbacks cb)
    : io_(context), settings_(std::move(settings)), cb_(std::move(cb)), refresh_timer_(context) {
    if (settings_.seeds.empty()) throw std::invalid_argument("no Redis server configured");
    if (settings_.cluster) slot_owner_.assign(cluster_slot_count, nullptr);
}

router::~router() {
    stop();
}

std::string_view router::publish_command() const noexcept {
    return settings_.cluster ? "SPUBLISH" : "PUBLISH";
}

std::string router::describe() const {
    if (!settings_.cluster) {
        return settings_.seeds.front().host + ":" + std::to_string(settings_.seeds.front().port);
    }
    std::string out = "cluster";
    std::size_t masters = 0;
    for (const auto& [address, s] : servers_) {
        if (s->seed_only) continue;
        out += masters++ == 0 ? " " : ",";
        out += address;
    }
    return out + " (" + std::to_string(masters) + " masters)";
}

void router::start() {
    if (started_) return;
    started_ = true;
    for (const auto& seed : settings_.seeds) ensure(seed.host, seed.port, settings_.cluster);
    if (settings_.cluster) {
        refresh_now();
        arm_refresh();
    }
}

void router::stop() {
    if (stopped_) return;
    stopped_ = true;
    refresh_timer_.cancel();
    // No slot points at a server any more (they go now).
    topology_known_ = false;
    std::fill(slot_owner_.begin(), slot_owner_.end(), nullptr);
    auto servers = std::move(servers_);
    servers_.clear();
    for (auto& [address, s] : servers) {
        s->commands->stop();
        s->subscriber->stop();
        for (auto& w : std::exchange(s->waiting, {})) w(false);
    }
    retired_.clear();
    available_ = false;
}

router::server* router::find(const std::string& address) {
    const auto it = servers_.find(address);
    return it == servers_.end() ? nullptr : it->second.get();
}

router::server& router::ensure(const std::string& host, std::uint16_t port, bool seed_only) {
    const std::string address = host + ":" + std::to_string(port);
    if (server* s = find(address)) {
        if (!seed_only) s->seed_only = false;
        return *s;
    }
    auto s = std::make_unique<server>();
    s->address = address;
    s->where = settings_.seeds.front();  // credentials and database of the configuration
    s->where.host = host;
    s->where.port = port;
    s->seed_only = seed_only;
    s->created = std::chrono::steady_clock::now();

    connection::callbacks cmd;
    cmd.on_connected = [this, address] {
        if (stopped_) return;
        server* self = find(address);
        if (self == nullptr) return;
        self->ever_ready = true;
        for (auto& w : std::exchange(self->waiting, {})) w(true);
        update_availability();
        if (!self->seed_only && (topology_known_ || !settings_.cluster) && cb_.on_server_ready) {
            cb_.on_server_ready();
        }
        if (settings_.cluster && !topology_known_) refresh_now();
    };
    cmd.on_disconnected = [this] {
        if (stopped_) return;
        update_availability();
        refresh_now();
    };
    s->commands = std::make_unique<connection>(io_, s->where, std::move(cmd), "commands " + address,
                                               settings_.connection_options);

    connection::callbacks sub;
    sub.on_connected = [this, address] {
        if (!stopped_) on_subscriber_ready(address);
    };
    sub.on_disconnected = [this, address] {
        if (!stopped_) on_subscriber_lost(address);
    };
    sub.on_message = [this, address](const reply& r) {
        if (!stopped_) on_push(address, r);
    };
    s->subscriber = std::make_unique<connection>(
        io_, s->where, std::move(sub), "subscriber " + address, settings_.connection_options);

    server& ref = *s;
    servers_.emplace(address, std::move(s));
    if (started_) {
        ref.commands->start();
        ref.subscriber->start();
    }
    return ref;
}

router::server* router::owner_of(std::string_view key) {
    if (!settings_.cluster) return servers_.empty() ? nullptr : servers_.begin()->second.get();
    if (!topology_known_) return nullptr;
    return slot_owner_[hash_slot(key)];
}

router::server* router::any_ready() {
    for (auto& [address, s] : servers_) {
        if (s->commands->connected()) return s.get();
    }
    return nullptr;
}

// ---- commands

void router::fail_soon(reply_handler done, const char* why) {
    // Posted, never inline: a caller's callback never runs inside its own command() call.
    if (done) asio::post(io_, [done = std::move(done), why] { done(error_reply(why)); });
}

void router::command(std::string_view key, std::vector<std::string> argv, reply_handler done) {
    if (!settings_.cluster && !servers_.empty()) {
        // One server: no redirects to follow, so the command need not be kept.
        servers_.begin()->second->commands->command(argv, std::move(done));
        return;
    }
    command_shared(key, std::make_shared<const std::vector<std::string>>(std::move(argv)),
                   std::move(done));
}

void router::command_shared(std::string_view key, shared_command argv, reply_handler done) {
    if (servers_.empty()) {
        fail_soon(std::move(done), "ERR not connected");
        return;
    }
    if (!settings_.cluster) {
        servers_.begin()->second->commands->command(*argv, std::move(done));
        return;
    }
    server* s = key.empty() ? any_ready() : owner_of(key);
    if (s == nullptr) {
        refresh_now();
        fail_soon(std::move(done), "CLUSTERDOWN no known master serves this slot");
        return;
    }
    run(s->address, std::string(key), std::move(argv), std::move(done), 0, false);
}

void router::run(const std::string& address, std::string key, shared_command argv,
                 reply_handler done, int redirects, bool asking) {
    server* s = find(address);
    if (s == nullptr) {
        if (done) done(error_reply("ERR connection lost"));
        return;
    }
    if (!s->commands->connected() && !s->ever_ready && s->waiting.size() < max_waiting_per_server) {
        // A master just learned of (a failover, a MOVED): wait for its first connection rather
        // than fail a command that will work in a millisecond.
        s->waiting.push_back([this, address, key = std::move(key), argv = std::move(argv),
                              done = std::move(done), redirects, asking](bool ready) mutable {
            if (ready) {
                run(address, std::move(key), std::move(argv), std::move(done), redirects, asking);
            } else if (done) {
                done(error_reply("ERR not connected"));
            }
        });
        return;
    }
    if (asking) s->commands->command({"ASKING"});
    // The command is kept (shared, not copied) in case Redis redirects it.
    const auto& args = *argv;
    s->commands->command(args, [this, host = s->where.host, key = std::move(key), argv,
                                done = std::move(done), redirects](const reply& r) mutable {
        if (!stopped_ && r.is_error() && redirects < max_redirects) {
            if (auto to = parse_redirect(r.str)) {
                server& target = follow(*to, host);
                run(target.address, std::move(key), std::move(argv), std::move(done), redirects + 1,
                    to->ask);
                return;
            }
        }
        if (done) done(r);
    });
}

// ---- subscriptions

void router::subscribe(const std::string& channel, std::function<void()> confirmed) {
    wanted_.try_emplace(channel);
    place(channel, std::move(confirmed), 0);
}

void router::unsubscribe(const std::string& channel) {
    const auto it = wanted_.find(channel);
    if (it == wanted_.end()) return;
    const std::string at = std::move(it->second);
    wanted_.erase(it);
    leave(at, channel);
}

void router::leave(const std::string& address, const std::string& channel) {
    server* s = address.empty() ? nullptr : find(address);
    if (s != nullptr && s->channels.erase(channel) != 0 && s->subscriber->connected()) {
        s->subscriber->command({settings_.cluster ? "SUNSUBSCRIBE" : "UNSUBSCRIBE", channel});
    }
}

router::server& router::follow(redirect& to, const std::string& asked_host) {
    (to.ask ? stats_.ask : stats_.moved).fetch_add(1, std::memory_order_relaxed);
    if (to.host.empty()) to.host = asked_host;
    server& target = ensure(to.host, to.port, false);
    if (!to.ask) {
        // The slot moved: patch it now, and learn what else moved.
        slot_owner_[to.slot] = &target;
        refresh_now();
    }
    return target;
}

void router::place(const std::string& channel, std::function<void()> confirmed, int redirects) {
    const auto it = wanted_.find(channel);
    server* s = it == wanted_.end() ? nullptr : owner_of(channel);
    if (s == nullptr || !s->subscriber->connected()) {
        // Made later, by on_subscriber_ready() or the next topology.
        if (it != wanted_.end()) it->second.clear();
        if (confirmed) confirmed();
        return;
    }
    // Served elsewhere before the slot moved: leave there first.
    if (it->second != s->address) leave(it->second, channel);
    it->second = s->address;
    if (!s->channels.insert(channel).second) {
        if (confirmed) confirmed();
        return;
    }
    s->subscriber->command(
        {settings_.cluster ? "SSUBSCRIBE" : "SUBSCRIBE", channel},
        [this, channel, address = s->address, host = s->where.host,
         confirmed = std::move(confirmed), redirects](const reply& r) mutable {
            if (stopped_) return;
            if (r.is_error()) {
                if (server* at = find(address)) at->channels.erase(channel);
                const auto w = wanted_.find(channel);
                if (w != wanted_.end() && w->second == address) w->second.clear();
                auto to = parse_redirect(r.str);
                if (to && !to->ask && w != wanted_.end() && redirects < max_redirects) {
                    follow(*to, host);
                    place(channel, std::move(confirmed), redirects + 1);
                    return;
                }
                refresh_now();
            }
            if (confirmed) confirmed();
        });
}

void router::on_subscriber_ready(const std::string& address) {
    server* s = find(address);
    if (s == nullptr) return;
    update_availability();
    // A fresh connection has no subscriptions: make every one this server owns, batched (in a
    // cluster a batch must stay within one slot).
    s->channels.clear();
    std::map<std::uint16_t, std::vector<std::string>> by_slot;
    std::size_t count = 0;
    for (auto& [channel, at] : wanted_) {
        if (owner_of(channel) != s) continue;
        at = address;
        s->channels.insert(channel);
        by_slot[settings_.cluster ? hash_slot(channel) : 0].push_back(channel);
        ++count;
    }
    const char* verb = settings_.cluster ? "SSUBSCRIBE" : "SUBSCRIBE";
    for (auto& [slot, channels] : by_slot) {
        for (std::size_t i = 0; i < channels.size(); i += subscribe_batch) {
            std::vector<std::string> argv{verb};
            const auto end = std::min(channels.size(), i + subscribe_batch);
            argv.insert(argv.end(), channels.begin() + static_cast<std::ptrdiff_t>(i),
                        channels.begin() + static_cast<std::ptrdiff_t>(end));
            s->subscriber->command(argv, [this, address](const reply& r) {
                if (stopped_ || !r.is_error()) return;
                // The slot moved meanwhile: forget what this batch placed, the next topology
                // places it again.
                spdlog::warn("redis: resubscribing at {} failed: {}", address, r.str);
                server* at = find(address);
                for (auto& [channel, where] : wanted_) {
                    if (where != address) continue;
                    if (at != nullptr && owner_of(channel) == at) continue;
                    where.clear();
                    if (at != nullptr) at->channels.erase(channel);
                }
                refresh_now();
            });
        }
    }
    if (count > 0) spdlog::info("redis: subscribed {} channels at {}", count, address);
}

void router::on_subscriber_lost(const std::string& address) {
    server* s = find(address);
    if (s == nullptr) return;
    s->channels.clear();
    unplace_all(address);
    update_availability();
    refresh_now();
}

void router::unplace_all(const std::string& address) {
    for (auto& [channel, at] : wanted_) {
        if (at == address) at.clear();
    }
}

void router::on_push(const std::string& address, const reply& r) {
    if (r.type != reply::kind::array || r.elements.size() != 3) return;
    const std::string& kind = r.elements[0].str;
    if (kind == "message" || kind == "smessage") {
        if (cb_.on_message) cb_.on_message(r.elements[1].str, r.elements[2].str);
        return;
    }
    if (kind == "sunsubscribe") {
        // Not asked for: the channel's slot moved to another master. The next topology says
        // which, and place() subscribes there.
        const std::string& channel = r.elements[1].str;
        if (server* s = find(address)) s->channels.erase(channel);
        const auto it = wanted_.find(channel);
        if (it != wanted_.end() && it->second == address) it->second.clear();
        refresh_now();
    }
}

// ---- topology

void router::refresh_now() {
    if (!settings_.cluster || stopped_ || !started_) return;
    if (refreshing_) {
        refresh_again_ = true;
        return;
    }
    server* s = any_ready();
    if (s == nullptr) {
        // Every known server is gone: try the seeds again as well (they may be back).
        for (const auto& seed : settings_.seeds) ensure(seed.host, seed.port, true);
        return;  // the repair timer asks again
    }
    refreshing_ = true;
    s->commands->command({"CLUSTER", "SLOTS"}, [this, host = s->where.host](const reply& r) {
        if (stopped_) return;
        refreshing_ = false;
        auto ranges = parse_cluster_slots(r, host);
        if (ranges && !ranges->empty()) {
            apply_topology(std::move(*ranges));
        } else {
            spdlog::warn("redis: CLUSTER SLOTS from {} gave no usable answer: {}", host,
                         r.is_error() ? r.str : std::string("no slots"));
        }
        if (std::exchange(refresh_again_, false)) refresh_now();
    });
}

void router::apply_topology(std::vector<slot_range> ranges) {
    // Rebuilt from the map every time, also when it is unchanged: a MOVED may have patched
    // single slots since.
    std::fill(slot_owner_.begin(), slot_owner_.end(), nullptr);
    std::set<std::string> owners;
    for (const auto& range : ranges) {
        server& s = ensure(range.host, range.port, false);
        owners.insert(s.address);
        std::fill(slot_owner_.begin() + range.first, slot_owner_.begin() + range.last + 1, &s);
    }
    if (!topology_known_ || ranges != ranges_) {
        std::vector<std::string> gone;
        for (const auto& [address, s] : servers_) {
            if (!owners.contains(address)) gone.push_back(address);
        }
        ranges_ = std::move(ranges);
        const bool first = !topology_known_;
        topology_known_ = true;
        if (!first) stats_.topology_changes.fetch_add(1, std::memory_order_relaxed);
        for (const auto& address : gone) drop_server(address);
        spdlog::info("redis: {}", describe());
        if (first && cb_.on_server_ready) cb_.on_server_ready();
    }
    // Every channel not at its owner goes there (no-op where the owner is not connected yet).
    std::vector<std::string> misplaced;
    for (const auto& [channel, at] : wanted_) {
        const server* s = owner_of(channel);
        if (s == nullptr || at != s->address) misplaced.push_back(channel);
    }
    for (const auto& channel : misplaced) place(channel, {}, 0);
    update_availability();
}

void router::drop_server(const std::string& address) {
    const auto it = servers_.find(address);
    if (it == servers_.end()) return;
    auto s = std::move(it->second);
    servers_.erase(it);
    unplace_all(address);
    s->commands->stop();
    s->subscriber->stop();
    for (auto& w : std::exchange(s->waiting, {})) w(false);
    // Destroyed on the next turn: one of its callbacks may be what runs now.
    retired_.push_back(std::move(s));
    asio::post(io_, [this] {
        if (!stopped_) retired_.clear();
    });
}

bool router::healthy() const {
    if (!available_) return false;
    for (const auto& [channel, at] : wanted_) {
        if (at.empty()) return false;
    }
    return true;
}

void router::arm_refresh() {
    refresh_timer_.expires_after(healthy() ? settings_.refresh_interval
                                           : settings_.repair_interval);
    refresh_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (ec || stopped_) return;
        // Commands waiting for a master that never came up fail now instead of hanging.
        const auto deadline =
            std::chrono::steady_clock::now() - settings_.connection_options.connect_timeout;
        for (auto& [address, s] : servers_) {
            if (!s->ever_ready && s->created < deadline && !s->waiting.empty()) {
                for (auto& w : std::exchange(s->waiting, {})) w(false);
            }
        }
        refresh_now();
        arm_refresh();
    });
}

void router::update_availability() {
    bool up = !servers_.empty() && (!settings_.cluster || topology_known_);
    unsigned serving = 0, serving_up = 0;
    for (const auto& [address, s] : servers_) {
        if (s->seed_only) continue;
        ++serving;
        if (s->commands->connected() && s->subscriber->connected()) {
            ++serving_up;
        } else {
            up = false;
        }
    }
    stats_.servers.store(serving, std::memory_order_relaxed);
    stats_.servers_up.store(serving_up, std::memory_order_relaxed);
    if (up == available_) return;
    available_ = up;
    if (cb_.on_availability) cb_.on_availability();
}

}  // namespace wsgate::broker::redis
