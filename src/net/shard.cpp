#include "net/shard.hpp"

#include "core/broker.hpp"
#include "net/server.hpp"
#include "net/ws_session.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include <algorithm>

namespace wsgate::net {

namespace {

std::int64_t steady_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

std::int64_t steady_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

}  // namespace

shard::shard(unsigned index, server& owner)
    : index_(index),
      owner_(owner),
      context_(1),
      tick_timer_(context_),
      now_ms_(steady_ms()),
      read_buffer_(new std::uint8_t[read_buffer_size]),
      json_resource_(json_buffer_, sizeof json_buffer_) {}

shard::~shard() = default;

std::int64_t shard::refresh_now() noexcept {
    now_ms_ = steady_ms();
    return now_ms_;
}

void shard::start() {
    arm_tick();
    thread_ = std::thread([this] {
        try {
            context_.run();
        } catch (const std::exception& e) {
            // A handler threw: a broken invariant. Crash loudly rather than limp on.
            spdlog::critical("shard {}: unhandled exception: {}", index_, e.what());
            std::abort();
        }
    });
}

void shard::stop() {
    context_.stop();
}

void shard::join() {
    if (thread_.joinable()) thread_.join();
}

void shard::add_session(ws_session* s) {
    s->registry_index_ = sessions_.size();
    sessions_.push_back(s);
}

void shard::remove_session(ws_session* s) {
    const std::size_t i = s->registry_index_;
    if (i >= sessions_.size() || sessions_[i] != s) return;
    sessions_[i] = sessions_.back();
    sessions_[i]->registry_index_ = i;
    sessions_.pop_back();
}

void shard::subscribe(ws_session* s, const std::string& topic, std::function<void()> ready) {
    auto& subscribers = topics_[topic].subscribers;
    const bool first = subscribers.empty();
    subscribers.push_back(s);
    if (!core::is_user_topic(topic)) metrics_.subscriptions.add(1);
    if (first) {
        metrics_.topics.add(1);
        // Registered before asking the broker, which may answer inline.
        auto& waiters = unconfirmed_[topic];
        if (ready) waiters.push_back(std::move(ready));
        owner_.broker().subscribe(index_, topic, [this, topic] { topic_ready(topic); });
        return;
    }
    if (!ready) return;
    if (auto it = unconfirmed_.find(topic); it != unconfirmed_.end()) {
        it->second.push_back(std::move(ready));
    } else {
        ready();
    }
}

void shard::topic_ready(const std::string& topic) {
    auto it = unconfirmed_.find(topic);
    if (it == unconfirmed_.end()) return;
    auto waiters = std::move(it->second);
    unconfirmed_.erase(it);
    for (auto& ready : waiters) ready();
}

void shard::unsubscribe(ws_session* s, const std::string& topic) {
    auto it = topics_.find(topic);
    if (it == topics_.end()) return;
    auto& subscribers = it->second.subscribers;
    // Recent subscribers are more likely to leave first; search from the back.
    auto pos = std::find(subscribers.rbegin(), subscribers.rend(), s);
    if (pos == subscribers.rend()) return;
    *pos = subscribers.back();
    subscribers.pop_back();
    if (!core::is_user_topic(topic)) metrics_.subscriptions.add(-1);
    if (subscribers.empty()) {
        topics_.erase(it);
        owner_.broker().unsubscribe(index_, topic);
        metrics_.topics.add(-1);
    }
}

void shard::presence_joined(const std::string& channel, const std::string& user) {
    std::string key = channel;
    key.push_back('\0');
    key.append(user);
    const auto count = ++presence_counts_[key];
    owner_.broker().set_presence(index_, channel, user, count);
}

void shard::presence_left(const std::string& channel, const std::string& user) {
    std::string key = channel;
    key.push_back('\0');
    key.append(user);
    auto it = presence_counts_.find(key);
    if (it == presence_counts_.end()) return;
    const auto count = --it->second;
    if (count == 0) presence_counts_.erase(it);
    owner_.broker().set_presence(index_, channel, user, count);
}

void shard::fanout(std::string_view topic, const core::frame_ptr& frame) {
    auto it = topics_.find(topic);
    if (it == topics_.end()) return;
    auto& pending = it->second.pending;
    if (pending.empty()) dirty_topics_.emplace_back(topic);
    pending.push_back(frame);
    request_flush();
}

void shard::schedule_flush(std::shared_ptr<ws_session> s) {
    flush_list_.push_back(std::move(s));
    request_flush();
}

void shard::request_flush() {
    if (!flush_scheduled_) {
        flush_scheduled_ = true;
        boost::asio::post(context_, [this] { flush_all(); });
    }
}

void shard::seal_topics() {
    const std::int64_t now = steady_ns();
    for (const auto& name : dirty_topics_) {
        auto it = topics_.find(name);
        if (it == topics_.end()) continue;  // the last subscriber left this turn
        auto& entry = it->second;
        if (entry.pending.empty()) continue;
        core::frame_ptr batch;
        if (entry.pending.size() == 1) {
            batch = std::move(entry.pending.front());
        } else {
            // One contiguous buffer: one iovec and one copy per subscriber in the kernel.
            auto joined = std::make_shared<core::wire_frame>();
            std::size_t total = 0;
            for (const auto& f : entry.pending) total += f->size();
            joined->storage.reserve(total);
            for (const auto& f : entry.pending) joined->storage.append(f->bytes());
            joined->created_ns = entry.pending.front()->created_ns;
            joined->frames = static_cast<std::uint32_t>(entry.pending.size());
            batch = std::move(joined);
        }
        // enqueue() never unsubscribes or destroys a session (a slow consumer is only marked
        // and closed later), so iterating the subscriber list here is safe.
        for (ws_session* s : entry.subscribers) s->enqueue(batch);
        metrics_.deliveries.add(entry.subscribers.size() * entry.pending.size());
        metrics_.fanout_latency.observe(now - batch->created_ns);
        entry.pending.clear();
    }
    dirty_topics_.clear();
}

void shard::flush_all() {
    seal_topics();
    flush_scheduled_ = false;
    // A flush may queue more work (a close after a failed write), which lands in a fresh list.
    auto batch = std::move(flush_list_);
    flush_list_.clear();
    for (auto& s : batch) s->flush();
    if (flush_list_.empty() && batch.capacity() <= 4096) {
        batch.clear();
        flush_list_.swap(batch);  // keep the capacity for the next round
    }
}

void shard::close_all_going_away() {
    for (std::size_t i = sessions_.size(); i-- > 0;) {
        if (i < sessions_.size()) sessions_[i]->close_going_away();
    }
}

void shard::arm_tick() {
    tick_timer_.expires_after(owner_.tick_interval());
    tick_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (ec) return;
        on_tick();
        arm_tick();
    });
}

void shard::on_tick() {
    const std::int64_t now = refresh_now();
    // Backwards: a session that closes for good removes itself by swapping the last one into
    // its slot, which has then already been visited.
    for (std::size_t i = sessions_.size(); i-- > 0;) {
        if (i < sessions_.size()) sessions_[i]->on_tick(now);
    }
}

}  // namespace wsgate::net
