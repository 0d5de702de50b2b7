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

std::size_t memory_broker::channel_count() const {
    return channels_.load(std::memory_order_relaxed);
}

}  // namespace wsgate::broker
