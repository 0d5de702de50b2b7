#include "support/redis_cluster.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

namespace wsgate::test {

namespace {

using clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// How long one redis-cli call may take (a command against a local server answers in
// milliseconds; `--cluster create` waits for the nodes to meet, in steps of a second).
constexpr auto command_timeout = 10s;
constexpr auto create_timeout = 60s;

std::string redis_cli_binary() {
    if (const char* env = std::getenv("WSGATE_REDIS_CLI"); env != nullptr && *env != '\0')
        return env;
    return "redis-cli";
}

std::string join(const std::vector<std::string>& words, std::string_view separator = " ") {
    std::string out;
    for (const auto& w : words) {
        if (!out.empty()) out += separator;
        out += w;
    }
    return out;
}

struct process_output {
    int status = 0;  // as from waitpid
    std::string out;
    std::string err;
};

// Runs args[0] (looked up in PATH) to completion, its output captured; SIGKILLs it and throws
// after `timeout`. posix_spawn rather than fork: nothing runs in the child before exec.
process_output run_process(const std::vector<std::string>& args,
                           std::chrono::milliseconds timeout) {
    int out_pipe[2];
    int err_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0)
        throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
    if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
        const auto text = std::string("pipe2: ") + std::strerror(errno);
        ::close(out_pipe[0]);
        ::close(out_pipe[1]);
        throw std::runtime_error(text);
    }

    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    ::posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
    ::posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
    // The test binary ignores SIGPIPE (redis_process does); the child gets the default back.
    posix_spawnattr_t attributes;
    ::posix_spawnattr_init(&attributes);
    sigset_t signals;
    ::sigemptyset(&signals);
    ::sigaddset(&signals, SIGPIPE);
    ::posix_spawnattr_setsigdefault(&attributes, &signals);
    ::sigemptyset(&signals);
    ::posix_spawnattr_setsigmask(&attributes, &signals);
    ::posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

    std::vector<std::string> owned = args;
    std::vector<char*> argv;
    for (auto& a : owned) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = -1;
    const int spawned = ::posix_spawnp(&pid, argv[0], &actions, &attributes, argv.data(), environ);
    ::posix_spawn_file_actions_destroy(&actions);
    ::posix_spawnattr_destroy(&attributes);
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    if (spawned != 0) {
        ::close(out_pipe[0]);
        ::close(err_pipe[0]);
        throw std::runtime_error("cannot run " + args[0] + ": " + std::strerror(spawned));
    }

    process_output result;
    pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
    std::string* sinks[2] = {&result.out, &result.err};
    const auto deadline = clock::now() + timeout;
    bool timed_out = false;
    while (fds[0].fd >= 0 || fds[1].fd >= 0) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
        if (left.count() <= 0) {
            timed_out = true;
            break;
        }
        if (::poll(fds, 2, static_cast<int>(left.count())) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || fds[i].revents == 0) continue;
            char buf[4096];
            const auto n = ::read(fds[i].fd, buf, sizeof buf);
            if (n > 0) {
                sinks[i]->append(buf, static_cast<std::size_t>(n));
            } else if (n == 0 || errno != EINTR) {
                ::close(fds[i].fd);
                fds[i].fd = -1;  // poll() skips it from now on
            }
        }
    }
    for (const auto& f : fds)
        if (f.fd >= 0) ::close(f.fd);
    if (timed_out) ::kill(pid, SIGKILL);
    while (::waitpid(pid, &result.status, 0) < 0 && errno == EINTR) {
    }
    if (timed_out) {
        throw std::runtime_error(join(args) + ": still running after " +
                                 std::to_string(timeout.count()) + " ms; output:\n" + result.out +
                                 result.err);
    }
    return result;
}

// A RESP reply: integers kept as their decimal text.
struct resp_reply {
    enum class kind { nil, simple, error, integer, bulk, array };
    kind type = kind::nil;
    std::string text;
    std::vector<resp_reply> elements;
};

bool succeeded(const process_output& p) {
    return WIFEXITED(p.status) && WEXITSTATUS(p.status) == 0;
}

std::vector<std::string> split_lines(std::string_view text) {
    std::vector<std::string> lines;
    std::size_t at = 0;
    while (at < text.size()) {
        auto end = text.find('\n', at);
        if (end == std::string_view::npos) end = text.size();
        auto line = text.substr(at, end - at);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (!line.empty()) lines.emplace_back(line);
        at = end + 1;
    }
    return lines;
}

// The value of `name` in INFO-style text ("name:value" lines), or "" when absent.
std::string info_field(std::string_view text, std::string_view name) {
    for (const auto& line : split_lines(text)) {
        if (line.size() > name.size() && line.starts_with(name) && line[name.size()] == ':') {
            return line.substr(name.size() + 1);
        }
    }
    return {};
}

std::vector<std::string> split_words(std::string_view line) {
    std::vector<std::string> words;
    std::istringstream in{std::string(line)};
    for (std::string w; in >> w;) words.push_back(std::move(w));
    return words;
}

int to_int(std::string_view text) {
    int value = -1;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size())
        throw std::runtime_error("redis_cluster: not a number: " + std::string(text));
    return value;
}

// One blocking RESP connection to a server of the cluster, for the harness's own queries: a
// poll of the cluster asks every server several things, and a redis-cli process per question
// would cost tens of milliseconds each. Binary safe, unlike redis-cli's raw output.
class resp_connection {
public:
    explicit resp_connection(std::uint16_t port) : port_(port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd_ < 0) throw std::runtime_error(failure("socket"));
        // MIGRATE below waits up to 5 s for the target; nothing else takes near that.
        timeval tv{10, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(port);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
            const auto text = failure("connect");
            ::close(fd_);
            throw std::runtime_error(text);
        }
    }
    ~resp_connection() { ::close(fd_); }
    resp_connection(const resp_connection&) = delete;
    resp_connection& operator=(const resp_connection&) = delete;

    // Sends one command and returns its reply; throws on an error reply or a broken connection.
    resp_reply command(const std::vector<std::string>& args) {
        std::string request = "*" + std::to_string(args.size()) + "\r\n";
        for (const auto& a : args) request += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
        for (std::size_t sent = 0; sent < request.size();) {
            const auto n = ::send(fd_, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) throw std::runtime_error(failure("send"));
            sent += static_cast<std::size_t>(n);
        }
        auto reply = read_reply();
        if (reply.type == resp_reply::kind::error) {
            throw std::runtime_error(address() + " answered " + join(args) + " with " + reply.text);
        }
        return reply;
    }

private:
    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
    std::string failure(std::string_view what) const {
        return "redis_cluster: " + std::string(what) + " " + address() + ": " +
               (errno == EAGAIN ? "timed out" : std::strerror(errno));
    }

    void fill() {
        if (begin_ == buffer_.size()) {
            buffer_.clear();
            begin_ = 0;
        }
        char chunk[16384];
        for (;;) {
            const auto n = ::recv(fd_, chunk, sizeof chunk, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) throw std::runtime_error(failure("recv from"));
            if (n == 0)
                throw std::runtime_error("redis_cluster: " + address() + " closed the connection");
            buffer_.append(chunk, static_cast<std::size_t>(n));
            return;
        }
    }
    std::string read_line() {
        for (;;) {
            const auto end = buffer_.find("\r\n", begin_);
            if (end != std::string::npos) {
                auto line = buffer_.substr(begin_, end - begin_);
                begin_ = end + 2;
                return line;
            }
            fill();
        }
    }
    std::string read_exact(std::size_t n) {
        while (buffer_.size() - begin_ < n + 2) fill();  // the data and its CRLF
        auto data = buffer_.substr(begin_, n);
        begin_ += n + 2;
        return data;
    }
    resp_reply read_reply() {
        const auto line = read_line();
        if (line.empty()) throw std::runtime_error("redis_cluster: empty line from " + address());
        resp_reply r;
        const std::string_view rest = std::string_view(line).substr(1);
        switch (line.front()) {
            case '+':
                r.type = resp_reply::kind::simple;
                r.text = rest;
                return r;
            case '-':
                r.type = resp_reply::kind::error;
                r.text = rest;
                return r;
            case ':':
                r.type = resp_reply::kind::integer;
                r.text = rest;
                return r;
            case '$': {
                const int length = to_int(rest);
                if (length < 0) return r;  // nil
                r.type = resp_reply::kind::bulk;
                r.text = read_exact(static_cast<std::size_t>(length));
                return r;
            }
            case '*': {
                const int count = to_int(rest);
                if (count < 0) return r;  // nil
                r.type = resp_reply::kind::array;
                for (int i = 0; i < count; ++i) r.elements.push_back(read_reply());
                return r;
            }
            default:
                throw std::runtime_error("redis_cluster: unexpected reply from " + address() +
                                         ": " + line);
        }
    }

    std::uint16_t port_;
    int fd_ = -1;
    std::string buffer_;
    std::size_t begin_ = 0;
};

// One command on a fresh connection.
resp_reply query(std::uint16_t port, const std::vector<std::string>& args) {
    return resp_connection(port).command(args);
}

// One line of CLUSTER NODES:
//   <id> <ip:port@cport[,hostname]> <flags> <master id or -> <ping-sent> <pong-recv>
//   <config-epoch> <link-state> <slot or first-last>... [<slot>->-<id>] [<slot>-<-<id>]
struct node_entry {
    std::string id;
    std::uint16_t port = 0;
    std::vector<std::string> flags;
    std::string master_id;  // "-" for a master
    std::vector<std::pair<int, int>> slot_ranges;
    bool open_slot = false;  // a slot importing or migrating

    bool has_flag(std::string_view f) const {
        return std::find(flags.begin(), flags.end(), f) != flags.end();
    }
    bool master() const { return has_flag("master"); }
    bool failing() const { return has_flag("fail") || has_flag("fail?"); }
};

struct cluster_view {
    std::uint16_t seen_by = 0;
    std::string text;  // as CLUSTER NODES returned it, for error messages
    std::vector<node_entry> nodes;

    const node_entry* myself() const {
        for (const auto& n : nodes)
            if (n.has_flag("myself")) return &n;
        return nullptr;
    }
    const node_entry* by_port(std::uint16_t port) const {
        for (const auto& n : nodes)
            if (n.port == port) return &n;
        return nullptr;
    }
    const node_entry* by_id(std::string_view id) const {
        for (const auto& n : nodes)
            if (n.id == id) return &n;
        return nullptr;
    }
    // The port serving each slot, 0 where none does.
    std::vector<std::uint16_t> slot_owners() const {
        std::vector<std::uint16_t> owners(redis_cluster::slot_count, 0);
        for (const auto& n : nodes) {
            if (!n.master()) continue;
            for (const auto& [first, last] : n.slot_ranges)
                for (int s = first; s <= last; ++s) owners[static_cast<std::size_t>(s)] = n.port;
        }
        return owners;
    }
};

cluster_view parse_cluster_nodes(std::uint16_t seen_by, std::string text) {
    cluster_view view;
    view.seen_by = seen_by;
    for (const auto& line : split_lines(text)) {
        const auto words = split_words(line);
        if (words.size() < 8)
            throw std::runtime_error("redis_cluster: odd CLUSTER NODES line: " + line);
        node_entry n;
        n.id = words[0];
        const auto& address = words[1];  // ip:port@cport[,hostname]
        const auto at = address.find('@');
        const auto colon = address.rfind(':', at);
        if (at == std::string::npos || colon == std::string::npos)
            throw std::runtime_error("redis_cluster: odd address in CLUSTER NODES: " + line);
        n.port = static_cast<std::uint16_t>(
            to_int(std::string_view(address).substr(colon + 1, at - colon - 1)));
        std::istringstream flags(words[2]);
        for (std::string f; std::getline(flags, f, ',');) n.flags.push_back(f);
        n.master_id = words[3];
        for (std::size_t i = 8; i < words.size(); ++i) {
            const std::string_view slots = words[i];
            if (slots.front() == '[') {
                n.open_slot = true;
                continue;
            }
            const auto dash = slots.find('-');
            if (dash == std::string_view::npos) {
                const int s = to_int(slots);
                n.slot_ranges.emplace_back(s, s);
            } else {
                n.slot_ranges.emplace_back(to_int(slots.substr(0, dash)),
                                           to_int(slots.substr(dash + 1)));
            }
        }
        view.nodes.push_back(std::move(n));
    }
    view.text = std::move(text);
    return view;
}

cluster_view read_view(std::uint16_t port) {
    return parse_cluster_nodes(port, query(port, {"CLUSTER", "NODES"}).text);
}

std::string address(std::uint16_t port) {
    return "127.0.0.1:" + std::to_string(port);
}

// CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), the checksum Redis Cluster
// hashes keys with.
std::uint16_t crc16_xmodem(std::string_view data) {
    std::uint16_t crc = 0;
    for (const unsigned char byte : data) {
        crc = static_cast<std::uint16_t>(crc ^ (byte << 8));
        for (int bit = 0; bit < 8; ++bit) {
            crc = static_cast<std::uint16_t>((crc & 0x8000) != 0 ? (crc << 1) ^ 0x1021 : crc << 1);
        }
    }
    return crc;
}

}  // namespace

redis_cluster::redis_cluster(redis_cluster_options options) : options_(std::move(options)) {
    if (options_.masters < 3 || options_.replicas < 0)
        throw std::invalid_argument(
            "redis_cluster: needs at least 3 masters and 0 or more replicas");

    std::vector<std::string> args = {
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",  // in the server's own directory
        "--cluster-node-timeout",
        std::to_string(options_.node_timeout.count()),
        // A replica may take over however long ago it last heard from its master.
        "--cluster-replica-validity-factor",
        "0",
        // Replicas sync at once instead of waiting 5 s for more replicas to join the transfer.
        "--repl-diskless-sync-delay",
        "0",
    };
    args.insert(args.end(), options_.server_args.begin(), options_.server_args.end());

    const int count = options_.masters * (1 + options_.replicas);
    std::vector<std::string> create = {redis_cli_binary(), "--cluster", "create"};
    for (int i = 0; i < count; ++i) {
        redis_options server_options;
        server_options.args = args;
        server_options.cluster_bus_port = true;
        servers_.push_back(std::make_unique<redis_process>(std::move(server_options)));
        create.push_back(address(servers_.back()->port()));
    }
    // redis-cli makes the first `masters` addresses masters and the rest their replicas.
    create.insert(create.end(),
                  {"--cluster-replicas", std::to_string(options_.replicas), "--cluster-yes"});
    const auto created = run_process(create, create_timeout);
    if (!succeeded(created)) {
        throw std::runtime_error("redis_cluster: `" + join(create) + "` failed:\n" + created.out +
                                 created.err);
    }
    wait_settled({}, "forming the cluster");
}

redis_cluster::~redis_cluster() {
    if (::testing::Test::HasFailure() || std::uncaught_exceptions() > 0) {
        for (const auto port : live_ports()) {
            try {
                const auto nodes = query(port, {"CLUSTER", "NODES"}).text;
                std::cerr << "---- CLUSTER NODES as " << address(port) << " sees it ----\n"
                          << nodes << '\n';
            } catch (const std::exception& e) {
                std::cerr << "---- CLUSTER NODES from " << address(port) << ": " << e.what()
                          << '\n';
            }
        }
    }
    // Each redis_process SIGKILLs its server, prints its log when the test failed and removes
    // its directory.
}

std::vector<std::uint16_t> redis_cluster::all_ports() const {
    std::vector<std::uint16_t> ports;
    for (const auto& s : servers_) ports.push_back(s->port());
    return ports;
}

std::vector<std::uint16_t> redis_cluster::live_ports() const {
    std::vector<std::uint16_t> ports;
    for (const auto& s : servers_)
        if (!killed_.contains(s->port())) ports.push_back(s->port());
    return ports;
}

redis_process& redis_cluster::server(std::uint16_t port) {
    for (auto& s : servers_)
        if (s->port() == port) return *s;
    throw std::invalid_argument("redis_cluster: no server on port " + std::to_string(port));
}

std::vector<std::uint16_t> redis_cluster::master_ports() {
    const auto live = live_ports();
    if (live.empty()) throw std::runtime_error("redis_cluster: every server has been killed");
    const auto view = read_view(live.front());
    std::vector<std::uint16_t> ports;
    for (const auto& n : view.nodes) {
        if (n.master() && !n.failing() && !killed_.contains(n.port)) ports.push_back(n.port);
    }
    std::sort(ports.begin(), ports.end());
    return ports;
}

std::string redis_cluster::seed_nodes() {
    std::vector<std::string> addresses;
    for (const auto port : master_ports()) addresses.push_back(address(port));
    return join(addresses, ",");
}

std::string redis_cluster::cli(std::uint16_t port, const std::vector<std::string>& args) {
    // -e: an error reply makes redis-cli exit non-zero.
    std::vector<std::string> command = {redis_cli_binary(),   "-h", "127.0.0.1", "-p",
                                        std::to_string(port), "-e"};
    command.insert(command.end(), args.begin(), args.end());
    auto result = run_process(command, command_timeout);
    if (!succeeded(result)) {
        throw std::runtime_error("redis_cluster: `" + join(command) + "` failed:\n" + result.out +
                                 result.err);
    }
    if (!result.out.empty() && result.out.back() == '\n') result.out.pop_back();
    return std::move(result.out);
}

std::uint16_t redis_cluster::key_slot(std::string_view key) {
    if (const auto open = key.find('{'); open != std::string_view::npos) {
        const auto close = key.find('}', open + 1);
        if (close != std::string_view::npos && close > open + 1)
            key = key.substr(open + 1, close - open - 1);
    }
    return static_cast<std::uint16_t>(crc16_xmodem(key) % slot_count);
}

std::uint16_t redis_cluster::master_of_slot(std::uint16_t slot) {
    const auto live = live_ports();
    if (live.empty()) throw std::runtime_error("redis_cluster: every server has been killed");
    const auto owner = read_view(live.front()).slot_owners().at(slot);
    if (owner == 0)
        throw std::runtime_error("redis_cluster: no master serves slot " + std::to_string(slot));
    return owner;
}

std::uint16_t redis_cluster::replica_of(std::uint16_t master_port) {
    const auto live = live_ports();
    if (live.empty()) throw std::runtime_error("redis_cluster: every server has been killed");
    const auto view = read_view(killed_.contains(master_port) ? live.front() : master_port);
    const auto* master = view.by_port(master_port);
    if (master == nullptr)
        throw std::invalid_argument("redis_cluster: no node on port " +
                                    std::to_string(master_port));
    for (const auto& n : view.nodes) {
        if (n.master_id == master->id && !n.failing() && !killed_.contains(n.port)) return n.port;
    }
    throw std::runtime_error("redis_cluster: the master on port " + std::to_string(master_port) +
                             " has no live replica:\n" + view.text);
}

void redis_cluster::failover(std::uint16_t replica_port) {
    const auto view = read_view(replica_port);
    const auto* me = view.myself();
    if (me == nullptr || me->master())
        throw std::invalid_argument("redis_cluster: " + address(replica_port) +
                                    " is not a replica");
    settle_goal goal;
    goal.master = replica_port;
    if (const auto* old_master = view.by_id(me->master_id);
        old_master != nullptr && !old_master->slot_ranges.empty()) {
        goal.slot = static_cast<std::uint16_t>(old_master->slot_ranges.front().first);
        goal.slot_owner = replica_port;
    }
    query(replica_port, {"CLUSTER", "FAILOVER"});
    wait_settled(goal, "failover to " + address(replica_port));
}

void redis_cluster::kill(std::uint16_t port) {
    server(port).kill();
    killed_.insert(port);
}

void redis_cluster::move_slot(std::uint16_t slot, std::uint16_t to_port) {
    const auto from_port = master_of_slot(slot);
    if (from_port == to_port) return;
    const auto from_id = query(from_port, {"CLUSTER", "MYID"}).text;
    const auto to_id = query(to_port, {"CLUSTER", "MYID"}).text;
    const auto slot_text = std::to_string(slot);

    // The order the Redis Cluster specification gives: the target imports before the source
    // migrates, so a client redirected with -ASK always finds the slot open there.
    resp_connection from(from_port);
    query(to_port, {"CLUSTER", "SETSLOT", slot_text, "IMPORTING", from_id});
    from.command({"CLUSTER", "SETSLOT", slot_text, "MIGRATING", to_id});
    for (;;) {
        const auto keys = from.command({"CLUSTER", "GETKEYSINSLOT", slot_text, "100"});
        if (keys.elements.empty()) break;
        std::vector<std::string> migrate = {
            "MIGRATE", "127.0.0.1", std::to_string(to_port), "", "0", "5000", "KEYS"};
        for (const auto& k : keys.elements) migrate.push_back(k.text);
        from.command(migrate);
    }
    // The target first, so the slot is never left with no owner that accepts its keys.
    query(to_port, {"CLUSTER", "SETSLOT", slot_text, "NODE", to_id});
    from.command({"CLUSTER", "SETSLOT", slot_text, "NODE", to_id});
    for (const auto port : master_ports()) {
        if (port != from_port && port != to_port)
            query(port, {"CLUSTER", "SETSLOT", slot_text, "NODE", to_id});
    }
    wait_for_owner(slot, to_port);
}

void redis_cluster::wait_until_settled() {
    wait_settled({}, "waiting for the cluster to settle");
}

void redis_cluster::wait_for_owner(std::uint16_t slot, std::uint16_t port) {
    settle_goal goal;
    goal.slot = slot;
    goal.slot_owner = port;
    wait_settled(goal, "waiting for " + address(port) + " to serve slot " + std::to_string(slot));
}

void redis_cluster::wait_settled(const settle_goal& goal, std::string_view what) {
    const auto deadline = clock::now() + options_.settle_timeout;
    for (;;) {
        const auto reason = unsettled_reason(goal);
        if (reason.empty()) return;
        if (clock::now() >= deadline) {
            throw std::runtime_error("redis_cluster: " + std::string(what) + ": not done within " +
                                     std::to_string(options_.settle_timeout.count()) +
                                     " ms: " + reason);
        }
        // A bounded poll of servers we do not control: they announce nothing to wait on.
        std::this_thread::sleep_for(10ms);
    }
}

std::string redis_cluster::unsettled_reason(const settle_goal& goal) {
    const auto live = live_ports();
    if (live.empty()) return "every server has been killed";

    std::vector<cluster_view> views;
    try {
        for (const auto port : live) {
            resp_connection server(port);
            const auto state =
                info_field(server.command({"CLUSTER", "INFO"}).text, "cluster_state");
            if (state != "ok") return address(port) + " reports cluster_state:" + state;
            auto view = parse_cluster_nodes(port, server.command({"CLUSTER", "NODES"}).text);
            const auto* me = view.myself();
            if (me == nullptr) return address(port) + " lists no myself in CLUSTER NODES";
            if (!me->master()) {
                const auto link =
                    info_field(server.command({"INFO", "replication"}).text, "master_link_status");
                if (link != "up") return address(port) + " reports master_link_status:" + link;
            }
            views.push_back(std::move(view));
        }
    } catch (const std::exception& e) {
        return e.what();
    }

    const auto owners = views.front().slot_owners();
    for (const auto& view : views) {
        const auto other = view.slot_owners();
        const auto [mine, theirs] = std::mismatch(owners.begin(), owners.end(), other.begin());
        if (mine != owners.end()) {
            return address(views.front().seen_by) + " and " + address(view.seen_by) +
                   " disagree on slot " + std::to_string(mine - owners.begin()) + ": " +
                   std::to_string(*mine) + " vs " + std::to_string(*theirs);
        }
        for (const auto& n : view.nodes) {
            if (n.open_slot)
                return address(view.seen_by) + " shows a slot importing or migrating on " +
                       address(n.port);
        }
    }
    for (std::size_t slot = 0; slot < owners.size(); ++slot) {
        if (owners[slot] == 0) return "no master serves slot " + std::to_string(slot);
        if (killed_.contains(owners[slot]))
            return "slot " + std::to_string(slot) + " is still served by the killed " +
                   address(owners[slot]);
    }

    // Every live server has the same role and master in every view as in its own.
    for (const auto& subject_view : views) {
        const auto* self = subject_view.myself();
        for (const auto& view : views) {
            const auto* seen = view.by_port(self->port);
            if (seen == nullptr)
                return address(view.seen_by) + " does not know " + address(self->port);
            if (seen->failing())
                return address(view.seen_by) + " flags " + address(self->port) + " as failing";
            if (seen->master() != self->master() || seen->master_id != self->master_id)
                return address(view.seen_by) + " does not yet see the new role of " +
                       address(self->port);
        }
    }

    if (const auto* master = views.front().by_port(goal.master);
        goal.master != 0 && (master == nullptr || !master->master()))
        return address(goal.master) + " is not a master yet";
    if (goal.slot_owner != 0 && owners.at(goal.slot) != goal.slot_owner) {
        return "slot " + std::to_string(goal.slot) + " is served by " +
               address(owners.at(goal.slot)) + ", not yet by " + address(goal.slot_owner);
    }
    return {};
}

}  // namespace wsgate::test
