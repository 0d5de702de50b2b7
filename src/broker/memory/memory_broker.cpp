#include "broker/memory/memory_broker.hpp"

#include "protocol/v1/server_frame.hpp"

#include <bit>
#include <cassert>
#include <chrono>

namespace wsgate::broker {

void memory_broker::start(core::local_delivery& delivery) {
    if (delivery.shard_count() > max_shards) {
        throw std::invalid_argument("the memory broker supports at most 64 workers");
    }
    delivery_ = &delivery;
}

memory_broker::stripe& memory_broker::stripe_for(std::string_view topic) noexcept {
    return stripes_[string_hash{}(topic) % stripe_count];
}

void memory_broker::subscribe(unsigned shard, std::string_view topic, std::function<void()> ready) {
    {
        auto& s = stripe_for(topic);
        std::lock_guard lock(s.mutex);
        auto it = s.topics.find(topic);
        if (it == s.topics.end()) {
            it = s.topics.emplace(std::string(topic), topic_state{}).first;
            if (!core::is_user_topic(topic)) channels_.fetch_add(1, std::memory_order_relaxed);
        }
        it->second.shard_mask |= std::uint64_t{1} << shard;
    }
    if (ready) ready();  // the stripe is updated: the next publish reaches this shard
}

void memory_broker::unsubscribe(unsigned shard, std::string_view topic) {
    auto& s = stripe_for(topic);
    std::lock_guard lock(s.mutex);
    auto it = s.topics.find(topic);
    if (it == s.topics.end()) return;
    it->second.shard_mask &= ~(std::uint64_t{1} << shard);
    if (it->second.shard_mask == 0) {
        s.topics.erase(it);
        if (!core::is_user_topic(topic)) channels_.fetch_sub(1, std::memory_order_relaxed);
    }
}

void memory_broker::deliver_all(std::uint64_t mask, std::string_view topic,
                                const core::frame_ptr& frame) {
    while (mask != 0) {
        const auto shard = static_cast<unsigned>(std::countr_zero(mask));
        mask &= mask - 1;
        delivery_->deliver(shard, topic, frame);
    }
}

void memory_broker::publish(unsigned, const core::publication& message,
                            core::publish_handler done) {
    assert(delivery_ != nullptr);
    const std::string ts = protocol::v1::format_timestamp(std::chrono::system_clock::now());
    auto& s = stripe_for(message.channel);
    std::uint64_t seq;
    {
        std::lock_guard lock(s.mutex);
        auto it = s.topics.find(message.channel);
        if (it == s.topics.end()) {
            // Nobody listens: the message is accepted and goes nowhere.
            seq = 1;
        } else {
            seq = ++it->second.last_seq;
            auto frame = protocol::v1::channel_message(message.channel, seq, message.from, ts,
                                                       message.data_json);
            deliver_all(it->second.shard_mask, message.channel, frame);
        }
    }
    done(core::publish_receipt{seq});
}

void memory_broker::send(unsigned, std::string_view topic, core::frame_ptr frame,
                         core::send_handler done) {
    auto& s = stripe_for(topic);
    {
        std::lock_guard lock(s.mutex);
        auto it = s.topics.find(topic);
        if (it == s.topics.end()) {
            done(core::error::user_offline);
            return;
        }
        deliver_all(it->second.shard_mask, topic, frame);
    }
    done({});
}

void memory_broker::set_presence(unsigned shard, std::string_view channel, std::string_view user,
                                 std::uint64_t connections) {
    auto& s = stripe_for(channel);
    std::lock_guard lock(s.mutex);
    auto& members = s.presence[std::string(channel)];
    auto it = members.find(user);
    if (it == members.end()) {
        if (connections == 0) {
            if (members.empty()) s.presence.erase(std::string(channel));
            return;
        }
        it = members.emplace(std::string(user), member_count{}).first;
    }
    auto& p = it->second;
    const std::uint64_t before = p.total;
    auto& mine = p.by_shard[shard];
    p.total = p.total - mine + connections;
    mine = connections;
    if (connections == 0) p.by_shard.erase(shard);
    const bool joined = before == 0 && p.total > 0;
    const bool left = before > 0 && p.total == 0;
    if (p.total == 0) members.erase(it);
    if (members.empty()) s.presence.erase(std::string(channel));
    if (!joined && !left) return;
    auto topic = s.topics.find(channel);
    if (topic == s.topics.end()) return;  // nobody left to tell
    deliver_all(topic->second.shard_mask, channel,
                protocol::v1::text_frame(protocol::v1::presence_event_json(joined, channel, user)));
}

void memory_broker::presence(unsigned, std::string_view channel, core::presence_handler done) {
    std::vector<core::presence_member> members;
    {
        auto& s = stripe_for(channel);
        std::lock_guard lock(s.mutex);
        if (auto it = s.presence.find(channel); it != s.presence.end()) {
            for (const auto& [user, p] : it->second) members.push_back({user, p.total});
        }
    }
    done(std::move(members));
}

void memory_broker::set_user_connection(unsigned, std::string_view user,
                                        std::string_view connection_id, bool open) {
    auto& s = stripe_for(user);
    std::lock_guard lock(s.mutex);
    auto it = s.users.find(user);
    if (open) {
        if (it == s.users.end())
            it = s.users.emplace(std::string(user), decltype(it->second){}).first;
        it->second.emplace(connection_id);
    } else if (it != s.users.end()) {
        if (auto c = it->second.find(connection_id); c != it->second.end()) it->second.erase(c);
        if (it->second.empty()) s.users.erase(it);
    }
}

void memory_broker::user_presence(unsigned, std::string_view user,
                                  core::user_presence_handler done) {
    std::vector<core::user_connection> connections;
    {
        auto& s = stripe_for(user);
        std::lock_guard lock(s.mutex);
        if (auto it = s.users.find(user); it != s.users.end()) {
            for (const auto& id : it->second) connections.push_back({node_id_, id});
        }
    }
    done(std::move(connections));
}

std::size_t memory_broker::channel_count() const {
    return channels_.load(std::memory_order_relaxed);
}

}  // namespace wsgate::broker
