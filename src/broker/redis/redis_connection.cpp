// One Redis connection on hiredis 0.14, driven by an Asio io_context (see the header).
//
// Lifetime rules. The connection owns at most one redisAsyncContext (a "link") at a time, plus
// the Asio objects that watch its socket: a posix::stream_descriptor that does NOT own the fd
// (hiredis closes it, so the descriptor is release()d in the `cleanup` hook, which hiredis
// runs before it frees the context), a connect timer, a retry timer and a resolver.
// - Every Asio handler holds a weak_ptr to `impl` and the `generation_` it was started for.
//   The generation changes whenever a link is torn down (by us or by hiredis) and at every
//   connect attempt, so a handler that outlived its link returns without touching anything.
// - hiredis frees a context on its own only inside redisAsyncHandleWrite (a failed connect or
//   a failed write). Our C callbacks and hooks never act there: they only record what happened
//   (`tcp_up_`, `lost_`), and settle() acts once hiredis has returned.
// - User code (done, on_connected, on_disconnected, on_message) never runs inside a hiredis
//   call. It may call command(), stop(), or destroy the connection: the handler that called it
//   holds a shared_ptr to `impl`, and checks `generation_` before it touches the link again.
// - The destructor closes the link without calling any callback; stop() fails the pending
//   commands before it returns.
//
// Reading. hiredis 0.14 predates Redis 7's sharded pub/sub: its reply dispatcher
// (redisProcessCallbacks) asserts, and aborts the process, on an `ssubscribe` confirmation or
// an `smessage` when the context is not in its own SUBSCRIBE mode, and hands them to a stale
// callback when it is. So this file uses hiredis for connecting, writing and parsing RESP, but
// dispatches replies itself: commands are appended with redisAppendCommandArgv (binary safe,
// no hiredis callback), the socket is read with redisBufferRead, and replies are taken with
// redisGetReply and matched against our own queue of pending commands, which knows the
// (P|S)SUBSCRIBE family (one confirmation per channel) and routes message / pmessage /
// smessage to callbacks::on_message. redisAsyncHandleRead and redisProcessCallbacks are never
// called. MONITOR is not supported. HELLO 3 (RESP3) is not either: hiredis 0.14 cannot parse it.
//
// hiredis writes with write(2), not send(MSG_NOSIGNAL): the process must ignore SIGPIPE (main()
// does), or a write to a server that just died kills it.

#include "broker/redis/redis_connection.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <deque>
#include <limits>
#include <random>
#include <set>
#include <utility>

namespace wsgate::broker::redis {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

char lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                              [](char x, char y) { return lower(x) == lower(y); });
}

reply copy_reply(const redisReply& from) {
    reply r;
    switch (from.type) {
        case REDIS_REPLY_STRING:
            r.type = reply::kind::string;
            r.str.assign(from.str, from.len);
            break;
        case REDIS_REPLY_STATUS:
            r.type = reply::kind::status;
            r.str.assign(from.str, from.len);
            break;
        case REDIS_REPLY_ERROR:
            r.type = reply::kind::error;
            r.str.assign(from.str, from.len);
            break;
        case REDIS_REPLY_INTEGER:
            r.type = reply::kind::integer;
            r.integer = from.integer;
            break;
        case REDIS_REPLY_ARRAY:
            r.type = reply::kind::array;
            r.elements.reserve(from.elements);
            for (std::size_t i = 0; i < from.elements; ++i) {
                if (from.element[i] != nullptr)
                    r.elements.push_back(copy_reply(*from.element[i]));
                else
                    r.elements.emplace_back();
            }
            break;
        default:
            r.type = reply::kind::nil;
            break;
    }
    return r;
}

// What a command does to the reply stream. The subscription commands get one reply per channel
// (their confirmations are arrays named like the command), the others exactly one.
enum class command_kind {
    regular,
    reset,  // also drops every subscription
    subscribe,
    unsubscribe,
    psubscribe,
    punsubscribe,
    ssubscribe,
    sunsubscribe,
};

command_kind classify(std::string_view name) {
    static constexpr std::pair<std::string_view, command_kind> names[] = {
        {"subscribe", command_kind::subscribe},   {"unsubscribe", command_kind::unsubscribe},
        {"psubscribe", command_kind::psubscribe}, {"punsubscribe", command_kind::punsubscribe},
        {"ssubscribe", command_kind::ssubscribe}, {"sunsubscribe", command_kind::sunsubscribe},
        {"reset", command_kind::reset},
    };
    for (const auto& [n, k] : names) {
        if (iequals(name, n)) return k;
    }
    return command_kind::regular;
}

bool is_subscription(command_kind k) {
    return k != command_kind::regular && k != command_kind::reset;
}

bool is_unsubscribe(command_kind k) {
    return k == command_kind::unsubscribe || k == command_kind::punsubscribe ||
           k == command_kind::sunsubscribe;
}

bool is_push_message(std::string_view type) {
    return type == "message" || type == "pmessage" || type == "smessage";
}

struct pending_command {
    command_kind kind = command_kind::regular;
    // Subscription commands: the channels still to be confirmed, or `all` for an UNSUBSCRIBE
    // without arguments, whose count is known at its first confirmation.
    std::vector<std::string> channels;
    bool all = false;
    std::optional<std::size_t> all_left;
    std::function<void(const reply&)> done;
};

}  // namespace

struct connection::impl : std::enable_shared_from_this<connection::impl> {
    enum class phase { idle, resolving, connecting, handshaking, ready, waiting, stopped };

    impl(asio::io_context& context, endpoint where, callbacks cb, std::string name, options opts)
        : io_(context),
          where_(std::move(where)),
          cb_(std::move(cb)),
          name_(std::move(name)),
          opts_(opts),
          resolver_(context),
          connect_timer_(context),
          retry_timer_(context),
          random_(std::random_device{}()) {}

    ~impl() { close_link(); }

    impl(const impl&) = delete;
    impl& operator=(const impl&) = delete;

    // ---- public operations

    void start() {
        if (phase_ != phase::idle) return;
        begin_attempt();
    }

    // notify: fail the pending commands (stop()); the destructor drops them silently.
    void shutdown(bool notify) {
        if (phase_ == phase::stopped) return;
        phase_ = phase::stopped;
        retry_timer_.cancel();
        close_link();
        if (notify) {
            fail_pending();
        } else {
            pending_.clear();
        }
    }

    void command(const std::vector<std::string>& argv, reply_handler done) {
        if (phase_ != phase::ready) {
            post_error(std::move(done), "ERR not connected");
            return;
        }
        if (argv.empty()) {
            post_error(std::move(done), "ERR empty command");
            return;
        }
        send(argv, std::move(done));
    }

    // ---- connecting

    void begin_attempt() {
        if (phase_ == phase::stopped) return;
        ++generation_;
        write_posted_ = false;
        arm_connect_timer();  // covers resolving, connecting and the handshake
        error_code ec;
        const auto address = asio::ip::make_address(where_.host, ec);
        if (!ec) {
            open_link(address.to_string());
            return;
        }
        // redisAsyncConnect would resolve a name with a blocking getaddrinfo.
        phase_ = phase::resolving;
        resolver_.async_resolve(
            where_.host, std::to_string(where_.port),
            [weak = weak_from_this(), gen = generation_](
                const error_code& rec, const asio::ip::tcp::resolver::results_type& results) {
                const auto self = weak.lock();
                if (!self || gen != self->generation_ || self->phase_ != phase::resolving) return;
                if (rec || results.empty()) {
                    self->link_failed("cannot resolve the host: " +
                                      (rec ? rec.message() : std::string("no address")));
                    return;
                }
                // IPv4 first (as hiredis itself prefers), then the next address after each
                // failure, so "localhost" reaches a server bound to 127.0.0.1 only.
                std::vector<asio::ip::address> addresses;
                for (const auto& entry : results) addresses.push_back(entry.endpoint().address());
                std::stable_partition(addresses.begin(), addresses.end(),
                                      [](const asio::ip::address& a) { return a.is_v4(); });
                self->open_link(addresses[self->failures_ % addresses.size()].to_string());
            });
    }

    void open_link(const std::string& address) {
        phase_ = phase::connecting;
        redisAsyncContext* ac = redisAsyncConnect(address.c_str(), where_.port);
        if (ac == nullptr) {
            link_failed("out of memory");
            return;
        }
        if (ac->err != 0) {
            std::string why = ac->c.errstr;
            redisAsyncFree(ac);  // no hooks yet: frees and closes the fd at once
            link_failed(std::move(why));
            return;
        }
        ac_ = ac;
        ac->data = this;
        ac->ev.data = this;
        ac->ev.addRead = &impl::hook_add_read;
        ac->ev.delRead = &impl::hook_del_read;
        ac->ev.addWrite = &impl::hook_add_write;
        ac->ev.delWrite = &impl::hook_del_write;
        ac->ev.cleanup = &impl::hook_cleanup;
        redisEnableKeepAlive(&ac->c);

        error_code ec;
        descriptor_.emplace(io_);
        descriptor_->assign(ac->c.fd, ec);
        if (ec) {
            descriptor_.reset();  // never registered: nothing to release
            link_failed("cannot watch the socket: " + ec.message());
            return;
        }
        // The first write event means the non-blocking connect finished (this arms it).
        redisAsyncSetConnectCallback(ac, &impl::on_hiredis_connect);
        redisAsyncSetDisconnectCallback(ac, &impl::on_hiredis_disconnect);
    }

    void arm_connect_timer() {
        connect_timer_.expires_after(opts_.connect_timeout);
        connect_timer_.async_wait(
            [weak = weak_from_this(), gen = generation_](const error_code& ec) {
                const auto self = weak.lock();
                if (!self || ec || gen != self->generation_) return;
                if (self->phase_ == phase::resolving || self->phase_ == phase::connecting ||
                    self->phase_ == phase::handshaking) {
                    self->link_failed("timed out after " +
                                      std::to_string(self->opts_.connect_timeout.count()) + " ms");
                }
            });
    }

    // AUTH and SELECT when configured, then PING, pipelined: ready once every reply is fine.
    // The PING makes "connected" mean that Redis answered (not LOADING, not a stray listener),
    // and turns a missing password into a clear NOAUTH error.
    void begin_handshake() {
        phase_ = phase::handshaking;
        const auto gen = generation_;
        const auto step = [this, gen](const char* what) {
            return [this, gen, what](const reply& r) { handshake_reply(gen, what, r); };
        };
        handshake_left_ = 0;
        if (!where_.password.empty()) {
            std::vector<std::string> auth{"AUTH"};
            if (!where_.username.empty()) auth.push_back(where_.username);
            auth.push_back(where_.password);
            send(std::move(auth), step("AUTH"));
            ++handshake_left_;
        }
        if (where_.database != 0) {
            send({"SELECT", std::to_string(where_.database)}, step("SELECT"));
            ++handshake_left_;
        }
        send({"PING"}, step("PING"));
        ++handshake_left_;
    }

    void handshake_reply(std::uint64_t gen, const char* what, const reply& r) {
        if (gen != generation_ || phase_ != phase::handshaking) return;
        if (r.is_error()) {
            link_failed(std::string(what) + " failed: " + r.str);
            return;
        }
        if (--handshake_left_ == 0) become_ready();
    }

    void become_ready() {
        phase_ = phase::ready;
        connect_timer_.cancel();
        failures_ = 0;
        spdlog::info("redis {}: connected to {}:{}", name_, where_.host, where_.port);
        if (cb_.on_connected) cb_.on_connected();
    }

    // ---- losing the link

    // Tears the link down, logs one line, schedules the next attempt, fails what was pending.
    void link_failed(std::string reason) {
        if (phase_ == phase::stopped) return;
        while (!reason.empty() && (reason.back() == '.' || reason.back() == ' ')) reason.pop_back();
        const bool was_ready = phase_ == phase::ready;
        close_link();
        const auto delay = schedule_retry();
        if (was_ready) {
            spdlog::warn("redis {}: lost the connection to {}:{}: {}; reconnecting in {} ms", name_,
                         where_.host, where_.port, reason, delay.count());
        } else {
            spdlog::warn("redis {}: cannot connect to {}:{}: {}; retrying in {} ms", name_,
                         where_.host, where_.port, reason, delay.count());
        }
        fail_pending();
        if (was_ready && phase_ != phase::stopped && cb_.on_disconnected) cb_.on_disconnected();
    }

    // Frees the context (if hiredis has not already) and forgets everything about the link.
    void close_link() {
        ++generation_;
        write_posted_ = false;
        connect_timer_.cancel();
        resolver_.cancel();
        if (ac_ != nullptr) {
            redisAsyncContext* ac = std::exchange(ac_, nullptr);
            freeing_ = true;
            redisAsyncFree(ac);  // runs hook_cleanup (which releases the descriptor) first
            freeing_ = false;
        }
        release_descriptor();
        want_read_ = want_write_ = read_armed_ = write_armed_ = false;
        tcp_up_ = lost_ = false;
        lost_reason_.clear();
        handshake_left_ = 0;
        channels_.clear();
        patterns_.clear();
        shard_channels_.clear();
    }

    void release_descriptor() {
        if (!descriptor_) return;
        descriptor_->release();  // deregisters and aborts the waits; hiredis owns the fd
        descriptor_.reset();
    }

    std::chrono::milliseconds schedule_retry() {
        phase_ = phase::waiting;
        const auto delay = next_backoff();
        retry_timer_.expires_after(delay);
        retry_timer_.async_wait([weak = weak_from_this(), gen = generation_](const error_code& ec) {
            const auto self = weak.lock();
            if (!self || ec || gen != self->generation_ || self->phase_ != phase::waiting) return;
            self->begin_attempt();
        });
        return delay;
    }

    // Capped exponential backoff with "equal jitter": a delay in [d/2, d].
    std::chrono::milliseconds next_backoff() {
        const auto initial = std::max<long long>(1, opts_.backoff_initial.count());
        const auto cap = std::max<long long>(initial, opts_.backoff_max.count());
        long long d = initial;
        for (unsigned i = 0; i < failures_ && d < cap; ++i) d *= 2;
        d = std::min(d, cap);
        ++failures_;
        std::uniform_int_distribution<long long> pick(d / 2, d);
        return std::chrono::milliseconds{pick(random_)};
    }

    void fail_pending() {
        auto lost = std::exchange(pending_, {});
        const auto r = error_reply("ERR connection lost");
        for (auto& p : lost) {
            if (p.done) p.done(r);
        }
    }

    void post_error(std::function<void(const reply&)> done, const char* text) {
        if (!done) return;
        // Posted, never inline: a caller's callback never runs inside its own command() call.
        // Dropped if the connection is destroyed first.
        asio::post(io_, [weak = weak_from_this(), done = std::move(done), text] {
            if (weak.expired()) return;
            done(error_reply(text));
        });
    }

    // ---- writing

    void send(const std::vector<std::string>& argv, reply_handler done) {
        std::vector<const char*> args;
        std::vector<std::size_t> lengths;
        args.reserve(argv.size());
        lengths.reserve(argv.size());
        for (const auto& a : argv) {
            args.push_back(a.data());
            lengths.push_back(a.size());
        }
        if (redisAppendCommandArgv(&ac_->c, static_cast<int>(args.size()), args.data(),
                                   lengths.data()) != REDIS_OK) {
            post_error(std::move(done), "ERR out of memory");
            return;
        }
        pending_command p;
        p.kind = classify(argv.front());
        if (is_subscription(p.kind)) {
            p.channels.assign(argv.begin() + 1, argv.end());
            // With no channel, SUBSCRIBE is an error (one reply); UNSUBSCRIBE means "all".
            p.all = p.channels.empty() && is_unsubscribe(p.kind);
        }
        p.done = std::move(done);
        pending_.push_back(std::move(p));
        flush_soon();
    }

    // Writes what command() appended, once per turn of the event loop (so a burst of commands
    // leaves in one write), without waiting for the socket to report writable: the descriptor
    // is edge-triggered, and an idle socket that is already writable reports nothing new, so a
    // wait could sit until some unrelated packet arrives. Only if hiredis cannot write it all
    // does it ask (through addWrite) to wait for writability.
    void flush_soon() {
        want_write_ = true;
        if (write_posted_) return;
        write_posted_ = true;
        asio::post(io_, [weak = weak_from_this(), gen = generation_] {
            const auto self = weak.lock();
            if (!self || gen != self->generation_) return;
            self->write_posted_ = false;
            self->on_writable();
        });
    }

    // ---- the Asio adapter

    void set_interest(bool read, bool on) {
        (read ? want_read_ : want_write_) = on;
        if (on) arm(read);
    }

    // One async_wait in flight per direction; a wait that fires after del* re-arms nothing.
    void arm(bool read) {
        bool& armed = read ? read_armed_ : write_armed_;
        if (armed || !descriptor_) return;
        armed = true;
        descriptor_->async_wait(
            read ? asio::posix::descriptor_base::wait_read
                 : asio::posix::descriptor_base::wait_write,
            [weak = weak_from_this(), gen = generation_, read](const error_code& ec) {
                const auto self = weak.lock();
                if (!self || gen != self->generation_) return;
                (read ? self->read_armed_ : self->write_armed_) = false;
                if (ec) {
                    // A release() bumps the generation first, so this is a real error.
                    self->link_failed("waiting on the socket: " + ec.message());
                    return;
                }
                if (read) {
                    self->on_readable();
                } else {
                    self->on_writable();
                }
            });
    }

    void on_writable() {
        if (!want_write_ || ac_ == nullptr) return;
        redisAsyncHandleWrite(ac_);  // connect completion, then a write; may free ac_
        settle();
    }

    // Acts on what hiredis reported from inside redisAsyncHandleWrite.
    void settle() {
        if (lost_) {
            auto why = std::exchange(lost_reason_, {});
            lost_ = false;
            link_failed(std::move(why));
            return;
        }
        if (tcp_up_) {
            tcp_up_ = false;
            begin_handshake();
        }
    }

    void on_readable() {
        if (!want_read_ || ac_ == nullptr) return;
        redisContext* c = &ac_->c;
        if ((c->flags & REDIS_CONNECTED) == 0) return;
        if (redisBufferRead(c) != REDIS_OK) {
            link_failed(c->errstr);
            return;
        }
        const auto gen = generation_;
        for (;;) {
            void* raw = nullptr;
            if (redisGetReply(c, &raw) != REDIS_OK) {
                link_failed(std::string("bad reply: ") + c->errstr);
                return;
            }
            if (raw == nullptr) break;
            reply r = copy_reply(*static_cast<const redisReply*>(raw));
            freeReplyObject(raw);
            dispatch(std::move(r));
            if (gen != generation_) return;  // closed from a callback: `c` may be gone
        }
        if (want_read_) arm(true);
    }

    // ---- replies

    bool subscribed() const noexcept {
        return !channels_.empty() || !patterns_.empty() || !shard_channels_.empty();
    }

    std::set<std::string>& subscriptions(command_kind k) {
        switch (k) {
            case command_kind::psubscribe:
            case command_kind::punsubscribe:
                return patterns_;
            case command_kind::ssubscribe:
            case command_kind::sunsubscribe:
                return shard_channels_;
            default:
                return channels_;
        }
    }

    // The server's set as we know it, so that an UNSUBSCRIBE without arguments knows how many
    // confirmations to expect, and pushes are told apart from replies.
    void track(command_kind k, const reply& r) {
        const auto& channel = r.elements[1];
        if (channel.type != reply::kind::string) return;
        auto& set = subscriptions(k);
        if (is_unsubscribe(k)) {
            set.erase(channel.str);
        } else {
            set.insert(channel.str);
        }
    }

    static bool claims(const pending_command& p, command_kind k, const reply& r) {
        if (p.kind != k) return false;
        if (p.all) return true;
        const auto& channel = r.elements[1];
        return channel.type == reply::kind::string &&
               std::find(p.channels.begin(), p.channels.end(), channel.str) != p.channels.end();
    }

    // A RESP2 connection mixes replies and pushes: a pushed array is told apart by its first
    // element, and only while something is subscribed (LRANGE may return ["message", ...]).
    void dispatch(reply r) {
        if (r.type == reply::kind::array && r.elements.size() >= 3 &&
            r.elements[0].type == reply::kind::string) {
            const std::string_view type = r.elements[0].str;
            const auto kind = classify(type);
            if (is_subscription(kind)) {
                if (!pending_.empty() && claims(pending_.front(), kind, r)) {
                    confirm(kind, r);
                    return;
                }
                if (subscribed()) {
                    // Not asked for: e.g. the sunsubscribe a cluster sends when a slot moves.
                    track(kind, r);
                    deliver(r);
                    return;
                }
            } else if (subscribed() && is_push_message(type)) {
                deliver(r);
                return;
            }
        }
        complete_head(r);
    }

    void deliver(const reply& r) {
        if (cb_.on_message) cb_.on_message(r);
    }

    // One confirmation of the subscription command at the head of the queue.
    void confirm(command_kind kind, const reply& r) {
        auto& head = pending_.front();
        bool last = false;
        if (head.all) {
            if (!head.all_left)
                head.all_left = std::max<std::size_t>(1, subscriptions(kind).size());
            last = --*head.all_left == 0;
        } else {
            head.channels.erase(
                std::find(head.channels.begin(), head.channels.end(), r.elements[1].str));
            last = head.channels.empty();
        }
        track(kind, r);
        // Run a copy or a moved-out callback: the callback may stop() and clear the queue.
        if (last) {
            auto done = std::move(head.done);
            pending_.pop_front();
            if (done) done(r);
        } else if (head.done) {
            auto done = head.done;
            done(r);
        }
    }

    void complete_head(const reply& r) {
        if (pending_.empty()) {
            spdlog::debug("redis {}: dropped a reply no command was waiting for", name_);
            return;
        }
        auto head = std::move(pending_.front());
        pending_.pop_front();
        if (head.kind == command_kind::reset && !r.is_error()) {
            channels_.clear();
            patterns_.clear();
            shard_channels_.clear();
        }
        if (head.done) head.done(r);
    }

    // ---- hiredis hooks and callbacks: they record, settle() acts

    static void hook_add_read(void* p) { static_cast<impl*>(p)->set_interest(true, true); }
    static void hook_del_read(void* p) { static_cast<impl*>(p)->set_interest(true, false); }
    static void hook_add_write(void* p) { static_cast<impl*>(p)->set_interest(false, true); }
    static void hook_del_write(void* p) { static_cast<impl*>(p)->set_interest(false, false); }

    // hiredis is about to free the context (it may call this twice).
    static void hook_cleanup(void* p) {
        auto* self = static_cast<impl*>(p);
        self->release_descriptor();
        self->want_read_ = self->want_write_ = false;
        if (!self->freeing_ && self->ac_ != nullptr) {
            // hiredis frees it on its own (inside redisAsyncHandleWrite): forget it now.
            self->note_loss(self->ac_->c.errstr);
            self->ac_ = nullptr;
            ++self->generation_;
        }
    }

    static void on_hiredis_connect(const redisAsyncContext* ac, int status) {
        auto* self = static_cast<impl*>(ac->data);
        if (status == REDIS_OK) {
            self->tcp_up_ = true;
        } else {
            self->note_loss(ac->c.errstr);
        }
    }

    static void on_hiredis_disconnect(const redisAsyncContext* ac, int) {
        auto* self = static_cast<impl*>(ac->data);
        if (!self->freeing_) self->note_loss(ac->c.errstr);
    }

    void note_loss(const char* why) {
        if (lost_) return;
        lost_ = true;
        lost_reason_ = (why != nullptr && *why != '\0') ? why : "connection closed";
    }

    // ---- state

    asio::io_context& io_;
    const endpoint where_;
    const callbacks cb_;
    const std::string name_;
    const options opts_;

    phase phase_ = phase::idle;
    std::uint64_t generation_ = 0;
    redisAsyncContext* ac_ = nullptr;
    std::optional<asio::posix::stream_descriptor> descriptor_;
    bool want_read_ = false;
    bool want_write_ = false;
    bool read_armed_ = false;
    bool write_armed_ = false;
    bool write_posted_ = false;  // a flush_soon() write is queued on the io_context
    bool freeing_ = false;       // inside our own redisAsyncFree
    bool tcp_up_ = false;        // recorded by on_hiredis_connect
    bool lost_ = false;          // recorded when hiredis drops the link on its own
    std::string lost_reason_;
    int handshake_left_ = 0;

    asio::ip::tcp::resolver resolver_;
    asio::steady_timer connect_timer_;
    asio::steady_timer retry_timer_;
    unsigned failures_ = 0;  // failed attempts since the last ready link
    std::minstd_rand random_;

    std::deque<pending_command> pending_;
    std::set<std::string> channels_;
    std::set<std::string> patterns_;
    std::set<std::string> shard_channels_;
};

connection::connection(boost::asio::io_context& context, endpoint where, callbacks cb,
                       std::string name, options opts)
    : impl_(std::make_shared<impl>(context, std::move(where), std::move(cb), std::move(name),
                                   opts)) {}

connection::~connection() {
    impl_->shutdown(false);
}

void connection::start() {
    impl_->start();
}

void connection::stop() {
    // The failed commands' callbacks may destroy this connection: keep `impl` alive meanwhile.
    const auto keep = impl_;
    keep->shutdown(true);
}

bool connection::connected() const noexcept {
    return impl_->phase_ == impl::phase::ready;
}

const std::string& connection::name() const noexcept {
    return impl_->name_;
}

void connection::command(const std::vector<std::string>& argv, reply_handler done) {
    impl_->command(argv, std::move(done));
}

}  // namespace wsgate::broker::redis
