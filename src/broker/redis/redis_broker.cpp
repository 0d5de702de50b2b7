#include "broker/redis/redis_broker.hpp"

#include "protocol/v1/server_frame.hpp"

#include <openssl/sha.h>
#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include <boost/json.hpp>

#include <bit>
#include <cstdlib>
#include <random>
#include <stdexcept>

namespace wsgate::broker::redis {

namespace {

// KEYS[1] seq key. ARGV: head, tail, ttl seconds, pub/sub channel, PUBLISH or SPUBLISH.
// The channel shares the seq key's hash tag, so on a cluster both live on the same shard.
constexpr std::string_view publish_script = R"lua(
local seq = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call(ARGV[5], ARGV[4], ARGV[1] .. seq .. ARGV[2])
return seq
)lua";

// KEYS: P pu:{ch}, P pn:{ch}. ARGV: "<run>|<user>", user, count, pub/sub channel, PUBLISH or
// SPUBLISH, join JSON, leave JSON. Sets the run's count (absolute, so a repeat changes
// nothing) and announces a join or leave when the cluster total crosses zero.
constexpr std::string_view presence_script = R"lua(
local old = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
local new = tonumber(ARGV[3])
if new == old then return 0 end
if new == 0 then
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  redis.call('HSET', KEYS[2], ARGV[1], new)
end
local before = tonumber(redis.call('HGET', KEYS[1], ARGV[2]) or '0')
local after = before + new - old
if after <= 0 then redis.call('HDEL', KEYS[1], ARGV[2]) else redis.call('HSET', KEYS[1], ARGV[2], after) end
if before <= 0 and after > 0 then redis.call(ARGV[5], ARGV[4], ARGV[6]) end
if before > 0 and after <= 0 then redis.call(ARGV[5], ARGV[4], ARGV[7]) end
return 1
)lua";

// KEYS: P pu:{ch}, P pn:{ch}. ARGV: dead run, pub/sub channel, PUBLISH or SPUBLISH, channel.
// Removes the run's entries from one channel, lowers the totals and announces users who are
// gone as leaves. Idempotent: nodes that clean up the same run at once do no harm.
constexpr std::string_view forget_channel_script = R"lua(
local mark = ARGV[1] .. '|'
local entries = redis.call('HGETALL', KEYS[2])
for i = 1, #entries, 2 do
  if string.sub(entries[i], 1, #mark) == mark then
    local user = string.sub(entries[i], #mark + 1)
    redis.call('HDEL', KEYS[2], entries[i])
    local left = redis.call('HINCRBY', KEYS[1], user, -tonumber(entries[i + 1]))
    if left <= 0 then
      redis.call('HDEL', KEYS[1], user)
      redis.call(ARGV[3], ARGV[2], '{"type":"leave","payload":{"channel":' ..
        cjson.encode(ARGV[4]) .. ',"user_id":' .. cjson.encode(user) .. '}}')
    end
  end
end
return 1
)lua";

// User presence, a compare-and-set on one user's hash. KEYS[1] P presence:{user}: field
// "<run>|<connection>" -> the Redis time (ms) its node last refreshed it.
// ARGV: ttl ms, then 'set' fields... | 'del' fields... | 'get' | 'forget' run dead_at_ms.
// 'forget' (a dead run's cleanup) removes only entries not refreshed since the run was declared
// dead: a late cleanup never erases a newer registration. Every call also drops entries older
// than the ttl (their node stopped refreshing them) and returns what is left.
constexpr std::string_view user_presence_script = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local op = ARGV[2]
if op == 'set' then
  for i = 3, #ARGV do redis.call('HSET', KEYS[1], ARGV[i], now) end
elseif op == 'del' then
  for i = 3, #ARGV do redis.call('HDEL', KEYS[1], ARGV[i]) end
elseif op == 'forget' then
  local mark = ARGV[3] .. '|'
  local dead_at = tonumber(ARGV[4])
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, #mark) == mark and tonumber(all[i + 1]) <= dead_at then
      redis.call('HDEL', KEYS[1], all[i])
    end
  end
end
local out = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if tonumber(all[i + 1]) < now - ttl then
    redis.call('HDEL', KEYS[1], all[i])
  else
    out[#out + 1] = all[i]
  end
end
if #out > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return out
)lua";

// KEYS: 1 P {registry}:nodes (zset run -> last beat, ms, Redis clock), 2 :info (run -> JSON),
// 3 :dead (run -> when declared dead), 4 :runs (node id -> its current run).
// ARGV: run, node id, info JSON, ttl ms.
// Registers this run (and declares the node's previous run dead at once), declares runs silent
// for longer than the ttl dead, and returns {live: info, last beat, ...; dead: run, when, ...;
// 1 if this run itself had been declared dead (it must take a new one), else 0}.
constexpr std::string_view heartbeat_script = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local forgotten = redis.call('HEXISTS', KEYS[3], ARGV[1])
if forgotten == 0 then
  local previous = redis.call('HGET', KEYS[4], ARGV[2])
  if previous and previous ~= ARGV[1] then
    redis.call('ZREM', KEYS[1], previous)
    redis.call('HDEL', KEYS[2], previous)
    redis.call('HSET', KEYS[3], previous, now)
  end
  redis.call('HSET', KEYS[4], ARGV[2], ARGV[1])
  redis.call('ZADD', KEYS[1], now, ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
end
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[4]))
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  redis.call('HSET', KEYS[3], id, now)
  local node = string.match(id, '^(.*)#[^#]*$')
  if node and redis.call('HGET', KEYS[4], node) == id then redis.call('HDEL', KEYS[4], node) end
end
local live = {}
local members = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #members, 2 do
  live[#live + 1] = redis.call('HGET', KEYS[2], members[i]) or '{}'
  live[#live + 1] = members[i + 1]
end
return {live, redis.call('HGETALL', KEYS[3]), forgotten}
)lua";

// KEYS: P {registry}:nodes, :info, :runs, :dead. ARGV: run, node id. A node shutting down:
// out of the registry at once, and its run marked dead so that any leftover presence is
// cleaned up by the others' next beat.
constexpr std::string_view leave_script = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('HGET', KEYS[3], ARGV[2]) == ARGV[1] then redis.call('HDEL', KEYS[3], ARGV[2]) end
redis.call('HSET', KEYS[4], ARGV[1], now)
return 1
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

// 48 random bits as 12 hex digits: a run's name after its node id.
std::string random_token() {
    std::random_device device;
    const auto bits = (std::uint64_t{device()} << 16) ^ device();
    char token[16];
    std::snprintf(token, sizeof token, "%012llx",
                  static_cast<unsigned long long>(bits & 0xFFFF'FFFF'FFFFULL));
    return token;
}

// "<run>|<connection>" -> {node id, connection id}, where run is "<node id>#<random>".
std::optional<core::user_connection> parse_connection_field(std::string_view field) {
    const auto bar = field.rfind('|');
    if (bar == std::string_view::npos) return std::nullopt;
    const auto run = field.substr(0, bar);
    const auto hash = run.rfind('#');
    if (hash == std::string_view::npos) return std::nullopt;
    return core::user_connection{std::string(run.substr(0, hash)),
                                 std::string(field.substr(bar + 1))};
}

constexpr std::size_t refresh_batch = 256;  // user presence refreshes per event-loop turn

constexpr std::string_view channel_kind = "ch";
constexpr std::string_view user_kind = "user";
constexpr std::string_view user_topic_prefix = "\x01u:";

}  // namespace

redis_broker::redis_broker(boost::asio::io_context& home, broker_settings settings)
    : home_(home),
      settings_(std::move(settings)),
      publish_sha_(sha1_hex(publish_script)),
      heartbeat_sha_(sha1_hex(heartbeat_script)),
      presence_sha_(sha1_hex(presence_script)),
      forget_channel_sha_(sha1_hex(forget_channel_script)),
      user_presence_sha_(sha1_hex(user_presence_script)),
      leave_sha_(sha1_hex(leave_script)),
      heartbeat_timer_(home) {
    if (settings_.prefix.find_first_of("{}") != std::string::npos) {
        throw std::invalid_argument("the Redis prefix may not contain '{' or '}'");
    }
    if (settings_.servers.empty()) throw std::invalid_argument("no Redis server configured");
    if (settings_.cluster && settings_.servers.front().database != 0) {
        throw std::invalid_argument("a Redis Cluster has only database 0");
    }
    new_run();
}

redis_broker::~redis_broker() {
    stop();
}

void redis_broker::new_run() {
    run_ = settings_.node_id + "#" + random_token();
}

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

std::string redis_broker::tagged(std::string_view kind, std::string_view name) const {
    std::string key;
    key.reserve(settings_.prefix.size() + kind.size() + name.size() + 3);
    key.append(settings_.prefix).append(kind).append(":{").append(name).append("}");
    return key;
}

std::string redis_broker::registry_key(std::string_view name) const {
    return settings_.prefix + "{registry}:" + std::string(name);
}

void redis_broker::run_script(std::string_view script, const std::string& sha,
                              std::vector<std::string> argv, reply_handler done) {
    // EVALSHA spares Redis hashing the script on every call. After a Redis restart (or on a
    // master that never ran it) the script cache is empty: NOSCRIPT, and the same call goes
    // once more as EVAL, which loads it. The command is shared, not copied, for that.
    argv[0] = "EVALSHA";
    argv[1] = sha;
    auto shared = std::make_shared<const std::vector<std::string>>(std::move(argv));
    const std::string& key = (*shared)[3];  // the first key routes the script (one slot)
    redis_->command_shared(
        key, shared, [this, script, route = key, shared, done = std::move(done)](const reply& r) {
            if (r.is_error() && r.str.starts_with("NOSCRIPT")) {
                auto eval = *shared;
                eval[0] = "EVAL";
                eval[1] = std::string(script);
                redis_->command(route, std::move(eval), done);
                return;
            }
            if (done) done(r);
        });
}

// ---- lifecycle

void redis_broker::start(core::local_delivery& delivery) {
    if (delivery.shard_count() > 64) {
        throw std::invalid_argument("the Redis broker supports at most 64 workers");
    }
    delivery_ = &delivery;
    router_settings rs;
    rs.seeds = settings_.servers;
    rs.cluster = settings_.cluster;
    router::callbacks cb;
    cb.on_message = [this](std::string_view channel, std::string_view payload) {
        on_message(channel, payload);
    };
    cb.on_server_ready = [this] { on_server_ready(); };
    cb.on_availability = [this] { update_availability(); };
    redis_ = std::make_unique<router>(home_, std::move(rs), std::move(cb));
    boost::asio::post(home_, [this] {
        redis_->start();
        arm_heartbeat();
    });
}

void redis_broker::leave(std::function<void()> done) {
    on_home([this, done = std::move(done)]() mutable {
        if (!redis_ || !redis_->available()) {
            done();
            return;
        }
        heartbeat_timer_.cancel();  // no beat may register this run again
        std::vector<std::string> argv{"",
                                      "",
                                      "4",
                                      registry_key("nodes"),
                                      registry_key("info"),
                                      registry_key("runs"),
                                      registry_key("dead"),
                                      run_,
                                      settings_.node_id};
        // Replies come in order per connection: when this one is answered, the presence
        // updates of the sessions that just closed have been too (on one server; on a cluster,
        // those on other masters were at least written).
        run_script(leave_script, leave_sha_, std::move(argv),
                   [done = std::move(done)](const reply&) { done(); });
    });
}

void redis_broker::stop() {
    heartbeat_timer_.cancel();
    if (redis_) redis_->stop();
    available_ = false;
}

void redis_broker::on_server_ready() {
    // The registry is joined by update_availability() when Redis comes up, then every
    // heartbeat_interval.
    update_availability();
    sync_presence();
}

std::string_view redis_broker::kind() const noexcept {
    return settings_.cluster ? "redis-cluster" : "redis";
}

bool redis_broker::available() const noexcept {
    return available_.load(std::memory_order_relaxed);
}

std::size_t redis_broker::channel_count() const {
    return channels_.load(std::memory_order_relaxed);
}

void redis_broker::update_availability() {
    const bool up = redis_ && redis_->available();
    if (available_.exchange(up) != up) {
        if (up) {
            spdlog::info("broker: Redis {} is up", redis_->describe());
            heartbeat();  // join the registry now, not one interval later
        } else {
            spdlog::warn("broker: Redis {} is down; serving local traffic only, publishes fail",
                         redis_->describe());
        }
    }
}

// ---- registry

void redis_broker::arm_heartbeat() {
    heartbeat_timer_.expires_after(settings_.heartbeat_interval);
    heartbeat_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (ec) return;
        heartbeat();
        refresh_user_presence();
        arm_heartbeat();
    });
}

void redis_broker::heartbeat() {
    if (!redis_->available()) return;  // the registry keeps our last beat until its TTL
    std::vector<std::string> argv{"EVALSHA",
                                  std::string(),  // set by run_script()
                                  "4",
                                  registry_key("nodes"),
                                  registry_key("info"),
                                  registry_key("dead"),
                                  registry_key("runs"),
                                  run_,
                                  settings_.node_id,
                                  delivery_->node_info_json(),
                                  std::to_string(settings_.node_ttl.count())};
    run_script(heartbeat_script, heartbeat_sha_, std::move(argv), [this](const reply& r) {
        if (r.type != reply::kind::array || r.elements.size() != 3) {
            spdlog::warn("broker: heartbeat failed: {}", r.str);
            return;
        }
        if (r.elements[2].integer == 1) {
            // Cut off for longer than the TTL: the others declared this run dead and clean up
            // after it. Go on as a new run and register everything again under it.
            const std::string old_run = run_;
            new_run();
            spdlog::warn("broker: this node was declared dead as {}; continuing as {}", old_run,
                         run_);
            sync_presence();
            heartbeat();
            return;
        }
        std::vector<std::string> nodes;
        const auto& live = r.elements[0].elements;
        for (std::size_t i = 0; i + 1 < live.size(); i += 2) {
            boost::system::error_code ec;
            auto node = boost::json::parse(live[i].str, ec);
            if (ec || !node.is_object()) continue;
            const auto last_ms = std::strtoll(live[i + 1].str.c_str(), nullptr, 10);
            node.as_object()["last_seen"] = protocol::v1::format_timestamp(
                std::chrono::system_clock::time_point(std::chrono::milliseconds(last_ms)));
            nodes.push_back(boost::json::serialize(node));
        }
        {
            std::lock_guard lock(nodes_mutex_);
            nodes_ = std::move(nodes);
        }
        const auto& dead = r.elements[1].elements;
        for (std::size_t i = 0; i + 1 < dead.size(); i += 2) {
            forget_run(dead[i].str, dead[i + 1].str);
        }
    });
}

void redis_broker::forget_run(const std::string& run, const std::string& dead_at_ms) {
    if (run == run_ || !forgetting_.insert(run).second) return;
    // The run's index sets live in their own slots, its entries in the slots of their channels
    // and users: one small script per entry (cluster-safe), then the indexes go, and last the
    // run's line in :dead, so a cleanup cut short is done again by the next beat.
    struct progress {
        std::size_t waiting = 2;  // the two SMEMBERS
        bool failed = false;
    };
    auto state = std::make_shared<progress>();
    const auto finish_one = [this, run, state](bool ok) {
        if (!ok) state->failed = true;
        if (--state->waiting != 0) return;
        forgetting_.erase(run);
        if (state->failed) return;
        redis_->command(tagged("pnode", run), {"DEL", tagged("pnode", run)});
        redis_->command(tagged("unode", run), {"DEL", tagged("unode", run)});
        redis_->command(registry_key("dead"), {"HDEL", registry_key("dead"), run});
        runs_forgotten_.fetch_add(1, std::memory_order_relaxed);
        spdlog::info("broker: forgot the presence of dead run {}", run);
    };
    const std::string publish(redis_->publish_command());
    redis_->command(tagged("pnode", run), {"SMEMBERS", tagged("pnode", run)},
                    [this, run, publish, state, finish_one](const reply& r) {
                        if (r.type != reply::kind::array) return finish_one(false);
                        state->waiting += r.elements.size();
                        for (const auto& channel : r.elements) {
                            const auto& ch = channel.str;
                            run_script(
                                forget_channel_script, forget_channel_sha_,
                                {"", "", "2", tagged("pu", ch), tagged("pn", ch), run,
                                 tagged(channel_kind, ch), publish, ch},
                                [finish_one](const reply& done) { finish_one(!done.is_error()); });
                        }
                        finish_one(true);
                    });
    redis_->command(tagged("unode", run), {"SMEMBERS", tagged("unode", run)},
                    [this, run, dead_at_ms, state, finish_one](const reply& r) {
                        if (r.type != reply::kind::array) return finish_one(false);
                        state->waiting += r.elements.size();
                        for (const auto& user : r.elements) {
                            const auto key = tagged("presence", user.str);
                            run_script(
                                user_presence_script, user_presence_sha_,
                                {"", "", "1", key, std::to_string(settings_.node_ttl.count()),
                                 "forget", run, dead_at_ms},
                                [finish_one](const reply& done) { finish_one(!done.is_error()); });
                        }
                        finish_one(true);
                    });
}

std::string redis_broker::metrics_text() const {
    if (!redis_) return {};
    const auto& st = redis_->stats();
    const auto line = [](std::string& out, std::string_view name, std::string_view type,
                         std::string_view help, std::uint64_t value) {
        out.append("# HELP ").append(name).append(" ").append(help).append("\n");
        out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
        out.append(name).append(" ").append(std::to_string(value)).append("\n");
    };
    std::string out;
    line(out, "wsgate_redis_servers", "gauge",
         "Redis servers in use: the one server, or the masters serving slots.",
         st.servers.load(std::memory_order_relaxed));
    line(out, "wsgate_redis_servers_up", "gauge", "Of those, the ones with both connections up.",
         st.servers_up.load(std::memory_order_relaxed));
    line(out, "wsgate_redis_moved_total", "counter", "MOVED redirects followed.",
         st.moved.load(std::memory_order_relaxed));
    line(out, "wsgate_redis_ask_total", "counter", "ASK redirects followed.",
         st.ask.load(std::memory_order_relaxed));
    line(out, "wsgate_redis_topology_changes_total", "counter",
         "Redis Cluster slot maps that differed from the previous one.",
         st.topology_changes.load(std::memory_order_relaxed));
    line(out, "wsgate_redis_dead_runs_cleaned_total", "counter",
         "Runs of dead nodes whose presence this node cleaned up.",
         runs_forgotten_.load(std::memory_order_relaxed));
    return out;
}

std::vector<std::string> redis_broker::cluster_nodes() const {
    std::lock_guard lock(nodes_mutex_);
    return nodes_;
}

// ---- channel presence

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
    // The run's index of channels, for the cleanup after its death. A channel leaves it when
    // the last of this node's users there is gone.
    const auto first = presence_.lower_bound({channel, std::string()});
    const bool any_here = first != presence_.end() && first->first.first == channel;
    const auto index = tagged("pnode", run_);
    if (count > 0) {
        redis_->command(index, {"SADD", index, channel});
    } else if (!any_here) {
        redis_->command(index, {"SREM", index, channel});
    }
    std::vector<std::string> argv{"",
                                  "",
                                  "2",
                                  tagged("pu", channel),
                                  tagged("pn", channel),
                                  run_ + "|" + user,
                                  user,
                                  std::to_string(count),
                                  redis_channel(channel),
                                  std::string(redis_->publish_command()),
                                  protocol::v1::presence_event_json(true, channel, user),
                                  protocol::v1::presence_event_json(false, channel, user)};
    // While Redis is down this fails; sync_presence() sends every count again on reconnect.
    run_script(presence_script, presence_sha_, std::move(argv), {});
}

void redis_broker::presence(unsigned shard, std::string_view channel, core::presence_handler done) {
    on_home([this, shard, channel = std::string(channel), done = std::move(done)]() mutable {
        const auto key = tagged("pu", channel);
        redis_->command(
            key, {"HGETALL", key}, [this, shard, done = std::move(done)](const reply& r) mutable {
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

// ---- user presence

void redis_broker::set_user_connection(unsigned, std::string_view user,
                                       std::string_view connection_id, bool open) {
    on_home([this, user = std::string(user), id = std::string(connection_id), open] {
        auto it = user_connections_.find(user);
        const auto index = tagged("unode", run_);
        if (open) {
            if (it == user_connections_.end()) {
                it = user_connections_.emplace(user, std::set<std::string>{}).first;
                redis_->command(index, {"SADD", index, user});
            }
            it->second.insert(id);
        } else {
            if (it == user_connections_.end()) return;
            it->second.erase(id);
            if (it->second.empty()) {
                user_connections_.erase(it);
                redis_->command(index, {"SREM", index, user});
            }
        }
        send_user_presence(user, open ? "set" : "del", {id});
    });
}

void redis_broker::send_user_presence(const std::string& user, std::string_view op,
                                      const std::vector<std::string>& connections) {
    const auto key = tagged("presence", user);
    std::vector<std::string> argv{
        "", "", "1", key, std::to_string(settings_.node_ttl.count()), std::string(op)};
    for (const auto& id : connections) argv.push_back(run_ + "|" + id);
    run_script(user_presence_script, user_presence_sha_, std::move(argv), {});
}

void redis_broker::refresh_user_presence() {
    if (!redis_->available()) return;  // sync_presence() registers everything on reconnect
    if (refreshing_users_) return;     // the previous round is still going
    refreshing_users_ = true;
    refresh_users_from({});
}

void redis_broker::refresh_users_from(const std::string& first) {
    // A bounded batch per event-loop turn: a node with many users must not hold its home shard
    // (and that shard's clients) for the whole round. The cursor is a user id, so users who
    // come or go meanwhile do not upset it.
    auto it = user_connections_.lower_bound(first);
    for (std::size_t n = 0; it != user_connections_.end() && n < refresh_batch; ++it, ++n) {
        send_user_presence(it->first, "set", {it->second.begin(), it->second.end()});
    }
    if (it == user_connections_.end()) {
        refreshing_users_ = false;
        return;
    }
    boost::asio::post(home_, [this, next = it->first] { refresh_users_from(next); });
}

void redis_broker::user_presence(unsigned shard, std::string_view user,
                                 core::user_presence_handler done) {
    on_home([this, shard, user = std::string(user), done = std::move(done)]() mutable {
        const auto key = tagged("presence", user);
        std::vector<std::string> argv{
            "", "", "1", key, std::to_string(settings_.node_ttl.count()), "get"};
        run_script(user_presence_script, user_presence_sha_, std::move(argv),
                   [this, shard, done = std::move(done)](const reply& r) mutable {
                       core::result<std::vector<core::user_connection>> result =
                           core::error::broker_unavailable;
                       if (r.type == reply::kind::array) {
                           std::vector<core::user_connection> connections;
                           for (const auto& field : r.elements) {
                               if (auto c = parse_connection_field(field.str)) {
                                   connections.push_back(std::move(*c));
                               }
                           }
                           result = std::move(connections);
                       }
                       complete_on(shard, [done = std::move(done), result = std::move(result)] {
                           done(result);
                       });
                   });
    });
}

void redis_broker::sync_presence() {
    for (const auto& [key, by_shard] : presence_) {
        std::uint64_t total = 0;
        for (const auto& [s, n] : by_shard) total += n;
        send_presence(key.first, key.second, total);
    }
    const auto users = tagged("unode", run_);
    for (const auto& [user, ids] : user_connections_) {
        redis_->command(users, {"SADD", users, user});
        send_user_presence(user, "set", {ids.begin(), ids.end()});
    }
}

// ---- pub/sub

std::string redis_broker::redis_channel(std::string_view topic) const {
    if (topic.starts_with(user_topic_prefix)) {
        return tagged(user_kind, topic.substr(user_topic_prefix.size()));
    }
    return tagged(channel_kind, topic);
}

std::optional<std::string> redis_broker::topic_of(std::string_view redis_channel) const {
    if (!redis_channel.starts_with(settings_.prefix) || !redis_channel.ends_with('}')) {
        return std::nullopt;
    }
    redis_channel.remove_prefix(settings_.prefix.size());
    redis_channel.remove_suffix(1);
    const auto take = [&](std::string_view kind) {
        if (redis_channel.size() < kind.size() + 2 || !redis_channel.starts_with(kind) ||
            redis_channel.substr(kind.size(), 2) != ":{") {
            return false;
        }
        redis_channel.remove_prefix(kind.size() + 2);
        return true;
    };
    if (take(channel_kind)) return std::string(redis_channel);
    if (take(user_kind)) return core::user_topic(redis_channel);
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
        // While Redis is down this is confirmed at once: the waiters go on (degraded, visible
        // in /health), and the router subscribes when Redis is back.
        redis_->subscribe(redis_channel(topic), [this, topic] { topic_confirmed(topic); });
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
        redis_->unsubscribe(redis_channel(topic));
    });
}

void redis_broker::on_message(std::string_view channel, std::string_view payload) {
    auto topic = topic_of(channel);
    if (!topic) return;
    deliver(*topic, payload);
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
        "",
        "",  // EVALSHA and the script's SHA1, set by run_script()
        "1",
        tagged("seq", message.channel),
        protocol::v1::channel_message_head(message.channel),
        protocol::v1::channel_message_tail(message.from, ts, message.data_json),
        std::to_string(settings_.seq_ttl.count()),
        redis_channel(message.channel),
        std::string()};  // PUBLISH or SPUBLISH, set on home
    on_home([this, shard, argv = std::move(argv), done = std::move(done)]() mutable {
        argv[8] = redis_->publish_command();
        run_script(publish_script, publish_sha_, std::move(argv),
                   [this, shard, done = std::move(done)](const reply& r) {
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
    std::vector<std::string> argv{"", redis_channel(topic),
                                  std::string(protocol::v1::frame_payload(*frame))};
    on_home([this, shard, argv = std::move(argv), done = std::move(done)]() mutable {
        argv[0] = redis_->publish_command();
        const std::string key = argv[1];
        redis_->command(key, std::move(argv),
                        [this, shard, done = std::move(done)](const reply& r) {
                            boost::system::error_code ec;
                            if (r.type != reply::kind::integer) {
                                ec = core::error::broker_unavailable;
                            } else if (r.integer == 0) {
                                // No node subscribes to the user's channel: no connection
                                // anywhere.
                                ec = core::error::user_offline;
                            }
                            complete_on(shard, [done = std::move(done), ec] { done(ec); });
                        });
    });
}

}  // namespace wsgate::broker::redis
