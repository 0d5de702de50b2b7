#include "broker/redis/redis_broker.hpp"

#include "protocol/v1/server_frame.hpp"

#include <openssl/sha.h>
#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include <boost/json.hpp>

#include <bit>
#include <cstdlib>
#include <stdexcept>

namespace wsgate::broker::redis {

namespace {

// KEYS[1] seq key; ARGV: head, tail, ttl seconds, pub/sub channel. Returns the new seq.
constexpr std::string_view publish_script = R"lua(
local seq = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[1] .. seq .. ARGV[2])
return seq
)lua";

// Presence keys, under the prefix P: P pu:<channel> hash user -> connections in the cluster;
// P pn:<channel> hash "<node>|<user>" -> connections on that node; P pnode:<node> set of the
// channels where the node has entries. forget_node() removes a node's entries, lowers the
// totals and announces users who are gone as leaves.
constexpr std::string_view forget_node_lua = R"lua(
local function forget_node(prefix, id)
  local set_key = prefix .. 'pnode:' .. id
  local mark = id .. '|'
  for _, ch in ipairs(redis.call('SMEMBERS', set_key)) do
    local nodes_key = prefix .. 'pn:' .. ch
    local users_key = prefix .. 'pu:' .. ch
    local entries = redis.call('HGETALL', nodes_key)
    for i = 1, #entries, 2 do
      if string.sub(entries[i], 1, #mark) == mark then
        local user = string.sub(entries[i], #mark + 1)
        redis.call('HDEL', nodes_key, entries[i])
        local left = redis.call('HINCRBY', users_key, user, -tonumber(entries[i + 1]))
        if left <= 0 then
          redis.call('HDEL', users_key, user)
          redis.call('PUBLISH', prefix .. 'ch:' .. ch,
            '{"type":"leave","payload":{"channel":' .. cjson.encode(ch) ..
            ',"user_id":' .. cjson.encode(user) .. '}}')
        end
      end
    end
  end
  redis.call('DEL', set_key)
end
)lua";

// KEYS: P pu:<channel>, P pn:<channel>, P pnode:<node>. ARGV: user, "<node>|<user>", count,
// channel, pub/sub channel, join JSON, leave JSON. Sets the node's count (absolute, so a
// repeat changes nothing) and announces a join or leave when the cluster total crosses zero.
constexpr std::string_view presence_script = R"lua(
local old = tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '0')
local new = tonumber(ARGV[3])
if new == old then return 0 end
if new == 0 then
  redis.call('HDEL', KEYS[2], ARGV[2])
else
  redis.call('HSET', KEYS[2], ARGV[2], new)
  redis.call('SADD', KEYS[3], ARGV[4])
end
local before = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local after = before + new - old
if after <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HSET', KEYS[1], ARGV[1], after) end
if before <= 0 and after > 0 then redis.call('PUBLISH', ARGV[5], ARGV[6]) end
if before > 0 and after <= 0 then redis.call('PUBLISH', ARGV[5], ARGV[7]) end
return 1
)lua";

// ARGV: prefix, node id. Forgets everything an earlier run of this node left behind.
const std::string reset_script = std::string(forget_node_lua) + R"lua(
forget_node(ARGV[1], ARGV[2])
return 1
)lua";

// KEYS[1] zset node id -> last beat (ms, Redis clock), KEYS[2] hash node id -> info JSON.
// ARGV: node id, info JSON, ttl ms, prefix. Registers this node, removes nodes silent for
// longer than the ttl (and their presence), and returns the live ones as info, last beat, ...
const std::string heartbeat_script = std::string(forget_node_lua) + R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))
for _, id in ipairs(dead) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  forget_node(ARGV[4], id)
end
local live = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local out = {}
for i = 1, #live, 2 do
  out[#out + 1] = redis.call('HGET', KEYS[2], live[i]) or '{}'
  out[#out + 1] = live[i + 1]
end
return out
)lua";

std::string sha1_hex(std::string_view text) {
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned char b : digest) {
        out.push_back(hex[b >> 4]);
        out.push_back(hex[b & 0xF]);
    }
    return out;
}

constexpr std::size_t resubscribe_batch = 1000;

constexpr std::string_view channel_part = "ch:";
constexpr std::string_view user_part = "user:";
constexpr std::string_view user_topic_prefix = "\x01u:";

}  // namespace

redis_broker::redis_broker(boost::asio::io_context& home, broker_settings settings)
    : home_(home),
      settings_(std::move(settings)),
      script_sha_(sha1_hex(publish_script)),
      heartbeat_sha_(sha1_hex(heartbeat_script)),
      presence_sha_(sha1_hex(presence_script)),
      reset_sha_(sha1_hex(reset_script)),
      heartbeat_timer_(home) {}

template <class Task>
void redis_broker::on_home(Task&& task) {
    if (home_.get_executor().running_in_this_thread()) {
        task();
    } else {
        boost::asio::post(home_, std::forward<Task>(task));
    }
}

void redis_broker::complete_on(unsigned shard, std::function<void()> task) {
    if (shard == settings_.home_shard) {
        task();
    } else {
        delivery_->post(shard, std::move(task));
    }
}

void redis_broker::run_publish_script(std::vector<std::string> argv,
                                      std::function<void(const reply&)> done) {
    run_script(publish_script, script_sha_, std::move(argv), std::move(done));
}

void redis_broker::run_script(std::string_view script, const std::string& sha,
                              std::vector<std::string> argv,
                              std::function<void(const reply&)> done) {
    // EVALSHA spares Redis hashing the script on every call. After a Redis restart the script
    // cache is empty: NOSCRIPT, and the same call goes once more as EVAL, which loads it.
    argv[0] = "EVALSHA";
    argv[1] = sha;
    commands_->command(argv, [this, script, argv, done = std::move(done)](const reply& r) mutable {
        if (r.is_error() && r.str.starts_with("NOSCRIPT")) {
            argv[0] = "EVAL";
            argv[1] = std::string(script);
            commands_->command(std::move(argv), std::move(done));
            return;
        }
        done(r);
    });
}

void redis_broker::arm_heartbeat() {
    heartbeat_timer_.expires_after(settings_.heartbeat_interval);
    heartbeat_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (ec) return;
        heartbeat();
        arm_heartbeat();
    });
}

void redis_broker::heartbeat() {
    if (!commands_->connected()) return;  // the registry keeps our last beat until its TTL
    const std::string info = delivery_->node_info_json();
    const auto parsed = boost::json::parse(info);
    std::vector<std::string> argv{"EVALSHA",
                                  std::string(),  // set by run_script()
                                  "2",
                                  settings_.prefix + "nodes",
                                  settings_.prefix + "node-info",
                                  std::string(parsed.at("node_id").as_string()),
                                  info,
                                  std::to_string(settings_.node_ttl.count()),
                                  settings_.prefix};
    run_script(heartbeat_script, heartbeat_sha_, std::move(argv), [this](const reply& r) {
        if (r.type != reply::kind::array) {
            spdlog::warn("broker: heartbeat failed: {}", r.str);
            return;
        }
        std::vector<std::string> nodes;
        for (std::size_t i = 0; i + 1 < r.elements.size(); i += 2) {
            boost::system::error_code ec;
            auto node = boost::json::parse(r.elements[i].str, ec);
            if (ec || !node.is_object()) continue;
            const auto last_ms = std::strtoll(r.elements[i + 1].str.c_str(), nullptr, 10);
            node.as_object()["last_seen"] = protocol::v1::format_timestamp(
                std::chrono::system_clock::time_point(std::chrono::milliseconds(last_ms)));
            nodes.push_back(boost::json::serialize(node));
        }
        std::lock_guard lock(nodes_mutex_);
        nodes_ = std::move(nodes);
    });
}

void redis_broker::set_presence(unsigned shard, std::string_view channel, std::string_view user,
                                std::uint64_t connections) {
    on_home([this, shard, channel = std::string(channel), user = std::string(user), connections] {
        auto key = std::make_pair(channel, user);
        auto& by_shard = presence_[key];
        if (connections == 0) {
            by_shard.erase(shard);
        } else {
            by_shard[shard] = connections;
        }
        std::uint64_t total = 0;
        for (const auto& [s, n] : by_shard) total += n;
        if (total == 0) presence_.erase(key);
        send_presence(channel, user, total);
    });
}

void redis_broker::send_presence(const std::string& channel, const std::string& user,
                                 std::uint64_t count) {
    std::vector<std::string> argv{"EVALSHA",
                                  std::string(),
                                  "3",
                                  settings_.prefix + "pu:" + channel,
                                  settings_.prefix + "pn:" + channel,
                                  settings_.prefix + "pnode:" + settings_.node_id,
                                  user,
                                  settings_.node_id + "|" + user,
                                  std::to_string(count),
                                  channel,
                                  redis_channel(channel),
                                  protocol::v1::presence_event_json(true, channel, user),
                                  protocol::v1::presence_event_json(false, channel, user)};
    // While Redis is down this fails; sync_presence() sends every count again on reconnect.
    run_script(presence_script, presence_sha_, std::move(argv), [](const reply&) {});
}

void redis_broker::sync_presence() {
    if (!presence_reset_done_) {
        presence_reset_done_ = true;
        run_script(reset_script, reset_sha_,
                   {"EVALSHA", std::string(), "0", settings_.prefix, settings_.node_id},
                   [](const reply&) {});
    }
    for (const auto& [key, by_shard] : presence_) {
        std::uint64_t total = 0;
        for (const auto& [s, n] : by_shard) total += n;
        send_presence(key.first, key.second, total);
    }
}

void redis_broker::presence(unsigned shard, std::string_view channel, core::presence_handler done) {
    on_home([this, shard, channel = std::string(channel), done = std::move(done)]() mutable {
        commands_->command(
            {"HGETALL", settings_.prefix + "pu:" + channel},
            [this, shard, done = std::move(done)](const reply& r) mutable {
                core::result<std::vector<core::presence_member>> result =
                    core::error::broker_unavailable;
                if (r.type == reply::kind::array) {
                    std::vector<core::presence_member> members;
                    for (std::size_t i = 0; i + 1 < r.elements.size(); i += 2) {
                        members.push_back(
                            {r.elements[i].str,
                             std::strtoull(r.elements[i + 1].str.c_str(), nullptr, 10)});
                    }
                    result = std::move(members);
                }
                complete_on(shard,
                            [done = std::move(done), result = std::move(result)] { done(result); });
            });
    });
}

std::vector<std::string> redis_broker::cluster_nodes() const {
    std::lock_guard lock(nodes_mutex_);
    return nodes_;
}

redis_broker::~redis_broker() {
    stop();
}

void redis_broker::start(core::local_delivery& delivery) {
    if (delivery.shard_count() > 64) {
        throw std::invalid_argument("the Redis broker supports at most 64 workers");
    }
    delivery_ = &delivery;
    connection::callbacks sub;
    sub.on_connected = [this] { on_subscriber_connected(); };
    sub.on_disconnected = [this] { update_availability(); };
    sub.on_message = [this](const reply& r) { on_message(r); };
    subscriber_ =
        std::make_unique<connection>(home_, settings_.where, std::move(sub), "redis-subscriber");
    connection::callbacks cmd;
    cmd.on_connected = [this] {
        update_availability();
        sync_presence();
        heartbeat();  // join the registry at once, then every heartbeat_interval
    };
    cmd.on_disconnected = [this] { update_availability(); };
    commands_ =
        std::make_unique<connection>(home_, settings_.where, std::move(cmd), "redis-commands");
    boost::asio::post(home_, [this] {
        subscriber_->start();
        commands_->start();
        arm_heartbeat();
    });
}

void redis_broker::stop() {
    heartbeat_timer_.cancel();
    if (subscriber_) subscriber_->stop();
    if (commands_) commands_->stop();
    available_ = false;
}

bool redis_broker::available() const noexcept {
    return available_.load(std::memory_order_relaxed);
}

std::size_t redis_broker::channel_count() const {
    return channels_.load(std::memory_order_relaxed);
}

void redis_broker::update_availability() {
    const bool up = subscriber_ && commands_ && subscriber_->connected() && commands_->connected();
    if (available_.exchange(up) != up) {
        if (up) {
            spdlog::info("broker: Redis {}:{} is up", settings_.where.host, settings_.where.port);
        } else {
            spdlog::warn("broker: Redis {}:{} is down; serving local traffic only, publishes fail",
                         settings_.where.host, settings_.where.port);
        }
    }
}

std::string redis_broker::redis_channel(std::string_view topic) const {
    std::string name = settings_.prefix;
    if (topic.starts_with(user_topic_prefix)) {
        name.append(user_part).append(topic.substr(user_topic_prefix.size()));
    } else {
        name.append(channel_part).append(topic);
    }
    return name;
}

std::optional<std::string> redis_broker::topic_of(std::string_view redis_channel) const {
    if (!redis_channel.starts_with(settings_.prefix)) return std::nullopt;
    redis_channel.remove_prefix(settings_.prefix.size());
    if (redis_channel.starts_with(channel_part)) {
        return std::string(redis_channel.substr(channel_part.size()));
    }
    if (redis_channel.starts_with(user_part)) {
        return core::user_topic(redis_channel.substr(user_part.size()));
    }
    return std::nullopt;
}

void redis_broker::subscribe(unsigned shard, std::string_view topic, std::function<void()> ready) {
    on_home([this, shard, topic = std::string(topic), ready = std::move(ready)]() mutable {
        auto& state = topics_[topic];
        const bool first = state.shard_mask == 0;
        state.shard_mask |= std::uint64_t{1} << shard;
        if (!first) {
            if (!ready) return;
            if (state.confirmed) {
                complete_on(shard, std::move(ready));
            } else {
                state.waiters.emplace_back(shard, std::move(ready));
            }
            return;
        }
        if (!core::is_user_topic(topic)) channels_.fetch_add(1, std::memory_order_relaxed);
        if (ready) state.waiters.emplace_back(shard, std::move(ready));
        // While Redis is down this fails at once: the waiters go on (degraded, visible in
        // /health), and on_subscriber_connected() subscribes again.
        subscriber_->command({"SUBSCRIBE", redis_channel(topic)},
                             [this, topic](const reply&) { topic_confirmed(topic); });
    });
}

void redis_broker::topic_confirmed(const std::string& topic) {
    auto it = topics_.find(topic);
    if (it == topics_.end()) return;
    it->second.confirmed = true;
    auto waiters = std::move(it->second.waiters);
    it->second.waiters.clear();
    for (auto& [shard, ready] : waiters) complete_on(shard, std::move(ready));
}

void redis_broker::unsubscribe(unsigned shard, std::string_view topic) {
    // Same route as subscribe() (inline on the home shard, posted from the others), so one
    // shard's subscribe and unsubscribe of a topic reach the home thread in their order.
    on_home([this, shard, topic = std::string(topic)] {
        auto it = topics_.find(topic);
        if (it == topics_.end()) return;
        it->second.shard_mask &= ~(std::uint64_t{1} << shard);
        if (it->second.shard_mask != 0) return;
        // Nobody may wait forever for a topic that goes away before Redis answered.
        auto waiters = std::move(it->second.waiters);
        topics_.erase(it);
        for (auto& [waiting_shard, ready] : waiters) complete_on(waiting_shard, std::move(ready));
        if (!core::is_user_topic(topic)) channels_.fetch_sub(1, std::memory_order_relaxed);
        subscriber_->command({"UNSUBSCRIBE", redis_channel(topic)});
    });
}

void redis_broker::on_subscriber_connected() {
    update_availability();
    // A fresh connection has no subscriptions: restore every topic this node listens to.
    std::vector<std::string> batch{"SUBSCRIBE"};
    for (const auto& [topic, state] : topics_) {
        batch.push_back(redis_channel(topic));
        if (batch.size() > resubscribe_batch) {
            subscriber_->command(std::move(batch));
            batch = {"SUBSCRIBE"};
        }
    }
    if (batch.size() > 1) subscriber_->command(std::move(batch));
    if (!topics_.empty()) spdlog::info("broker: resubscribed {} topics", topics_.size());
}

void redis_broker::on_message(const reply& message) {
    // ["message", channel, payload] (or "smessage" for sharded pub/sub)
    if (message.type != reply::kind::array || message.elements.size() != 3) return;
    const auto& kind = message.elements[0].str;
    if (kind != "message" && kind != "smessage") return;
    auto topic = topic_of(message.elements[1].str);
    if (!topic) return;
    deliver(*topic, message.elements[2].str);
}

void redis_broker::deliver(std::string_view topic, std::string_view json) {
    auto it = topics_.find(std::string(topic));
    if (it == topics_.end()) return;  // unsubscribed meanwhile
    // Framed once per node; every local subscriber on every shard gets these same bytes.
    const core::frame_ptr frame = protocol::v1::text_frame(json);
    std::uint64_t mask = it->second.shard_mask;
    while (mask != 0) {
        const auto shard = static_cast<unsigned>(std::countr_zero(mask));
        mask &= mask - 1;
        delivery_->deliver(shard, topic, frame);
    }
}

void redis_broker::publish(unsigned shard, const core::publication& message,
                           core::publish_handler done) {
    const std::string ts = protocol::v1::format_timestamp(std::chrono::system_clock::now());
    std::vector<std::string> argv{
        "EVALSHA",
        std::string(),  // the script's SHA1, set by run_publish_script()
        "1",
        settings_.prefix + "seq:" + std::string(message.channel),
        protocol::v1::channel_message_head(message.channel),
        protocol::v1::channel_message_tail(message.from, ts, message.data_json),
        std::to_string(settings_.seq_ttl.count()),
        redis_channel(message.channel)};
    on_home([this, shard, argv = std::move(argv), done = std::move(done)]() mutable {
        run_publish_script(std::move(argv), [this, shard, done = std::move(done)](const reply& r) {
            core::result<core::publish_receipt> result = core::error::broker_unavailable;
            if (r.type == reply::kind::integer) {
                result = core::publish_receipt{static_cast<std::uint64_t>(r.integer)};
            } else {
                spdlog::debug("broker: publish failed: {}", r.str);
            }
            complete_on(shard, [done = std::move(done), result] { done(result); });
        });
    });
}

void redis_broker::send(unsigned shard, std::string_view topic, core::frame_ptr frame,
                        core::send_handler done) {
    std::vector<std::string> argv{"PUBLISH", redis_channel(topic),
                                  std::string(protocol::v1::frame_payload(*frame))};
    on_home([this, shard, argv = std::move(argv), done = std::move(done)]() mutable {
        commands_->command(std::move(argv), [this, shard, done = std::move(done)](const reply& r) {
            boost::system::error_code ec;
            if (r.type != reply::kind::integer) {
                ec = core::error::broker_unavailable;
            } else if (r.integer == 0) {
                // No node subscribes to the user's channel: no connection anywhere.
                ec = core::error::user_offline;
            }
            complete_on(shard, [done = std::move(done), ec] { done(ec); });
        });
    });
}

}  // namespace wsgate::broker::redis
