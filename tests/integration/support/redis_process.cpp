#include "support/redis_process.hpp"

#include "support/child_wait.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <utility>

namespace wsgate::test {

namespace {

using clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::string system_error_text(std::string_view what) {
    return std::string(what) + ": " + std::strerror(errno);
}

std::string read_file(const std::string& path, std::size_t from = 0) {
    std::ifstream in(path, std::ios::binary);
    if (from != 0) in.seekg(static_cast<std::streamoff>(from));
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

std::size_t file_size(const std::string& path) {
    std::error_code ec;
    const auto n = std::filesystem::file_size(path, ec);
    return ec ? 0 : static_cast<std::size_t>(n);
}

std::string redis_binary() {
    if (const char* env = std::getenv("WSGATE_REDIS_SERVER"); env != nullptr && *env != '\0')
        return env;
    return "redis-server";
}

// The low end of the kernel's ephemeral port range: connect() takes source ports from there, so
// a listening port inside it can be taken at any moment by a client nobody can see. 32768 (the
// usual default) when the file cannot be read or leaves no room below it.
std::uint16_t ephemeral_range_start() {
    std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
    unsigned low = 0;
    unsigned high = 0;
    if (in >> low >> high && low > 11'000 && low <= 65'535) return static_cast<std::uint16_t>(low);
    return 32'768;
}

// Whether a listening socket could bind 127.0.0.1:port right now (without SO_REUSEADDR, so a
// port some recent connection still holds in TIME_WAIT is passed over too).
bool port_binds(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error(system_error_text("socket"));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return bound;
}

// A port that was free a moment ago, chosen at random between 10000 and the ephemeral range
// (random, so test binaries run in parallel rarely try the same one). Another process may take
// it before redis binds it; launch() reports that and the caller picks another.
std::uint16_t pick_free_port(std::uint16_t other_than = 0) {
    thread_local std::mt19937 random{std::random_device{}()};
    std::uniform_int_distribution<unsigned> in_range(10'000, ephemeral_range_start() - 1u);
    constexpr int picks = 50;
    for (int i = 0; i < picks; ++i) {
        const auto port = static_cast<std::uint16_t>(in_range(random));
        if (port != other_than && port_binds(port)) return port;
    }
    throw std::runtime_error("redis_process: none of " + std::to_string(picks) +
                             " random ports between 10000 and " +
                             std::to_string(ephemeral_range_start()) + " could be bound");
}

enum class probe_result { answered, refused, not_ready };

// One PING on a fresh connection. A server that needs a password answers -NOAUTH: it is up.
probe_result ping(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return probe_result::not_ready;
    timeval tv{0, 500'000};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        const bool refused = errno == ECONNREFUSED;
        ::close(fd);
        return refused ? probe_result::refused : probe_result::not_ready;
    }
    constexpr std::string_view request = "*1\r\n$4\r\nPING\r\n";
    std::string answer;
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(request.size())) {
        char buf[256];
        while (answer.find("\r\n") == std::string::npos) {
            const auto n = ::recv(fd, buf, sizeof buf, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            answer.append(buf, static_cast<std::size_t>(n));
        }
    }
    ::close(fd);
    if (answer.rfind("+PONG", 0) == 0 || answer.rfind("-NOAUTH", 0) == 0)
        return probe_result::answered;
    return probe_result::not_ready;  // e.g. -LOADING, or closed before answering
}

std::string describe_status(int status) {
    if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
    return "ended";
}

}  // namespace

redis_process::redis_process(redis_options options) : options_(std::move(options)) {
    ::signal(SIGPIPE, SIG_IGN);

    const char* tmpdir = std::getenv("TMPDIR");
    std::string dir_template =
        std::string(tmpdir != nullptr && *tmpdir ? tmpdir : "/tmp") + "/wsgate-redis-XXXXXX";
    if (::mkdtemp(dir_template.data()) == nullptr)
        throw std::runtime_error(system_error_text("mkdtemp for redis-server"));
    dir_ = dir_template;
    log_path_ = dir_ + "/redis.log";

    try {
        constexpr int attempts = 10;
        for (int i = 0; i < attempts; ++i) {
            port_ = pick_free_port();
            if (options_.cluster_bus_port) cluster_bus_port_ = pick_free_port(port_);
            if (launch()) return;
        }
        throw std::runtime_error("redis-server: no free port after " + std::to_string(attempts) +
                                 " attempts\n---- log ----\n" + log());
    } catch (...) {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
        throw;
    }
}

redis_process::~redis_process() {
    if (pid_ > 0) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            // Died while the test thought it was running: a crash worth a failure.
            ADD_FAILURE() << "redis-server (pid " << pid_ << ", port " << port_ << ") "
                          << describe_status(status) << " unexpectedly";
        } else {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, &status, 0);
        }
        pid_ = -1;
    }
    if (::testing::Test::HasFailure() || std::uncaught_exceptions() > 0) {
        std::cerr << "---- redis-server (port " << port_ << ") log ----\n"
                  << log() << "---- end of redis-server log ----\n";
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
}

std::string redis_process::url() const {
    return "redis://127.0.0.1:" + std::to_string(port_);
}

std::string redis_process::log() const {
    return read_file(log_path_);
}

bool redis_process::running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
    }
    return true;
}

void redis_process::stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    if (!wait_child(pid_, 10s)) {
        ADD_FAILURE() << "redis-server did not exit within 10 s of SIGTERM; sending SIGKILL";
        ::kill(pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
    }
    pid_ = -1;
}

void redis_process::kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
}

void redis_process::restart() {
    kill();
    // redis sets SO_REUSEADDR, so connections left in TIME_WAIT do not block the bind; another
    // process taking the port meanwhile would, so retry for a while before giving up.
    const auto deadline = clock::now() + 5s;
    while (!launch()) {
        if (clock::now() >= deadline) {
            throw std::runtime_error(
                "redis-server: port " + std::to_string(port_) +
                (cluster_bus_port_ != 0 ? " or " + std::to_string(cluster_bus_port_)
                                        : std::string()) +
                " still taken 5 s after the restart began\n---- log ----\n" + log());
        }
        std::this_thread::sleep_for(50ms);
    }
}

bool redis_process::launch() {
    // No persistence, in the foreground, loopback only; the temp dir holds anything it writes
    // (e.g. nodes.conf with --cluster-enabled yes).
    const std::pair<std::string, std::string> settings[] = {
        {"--port", std::to_string(port_)},
        {"--bind", "127.0.0.1"},
        {"--dir", dir_},
        {"--save", ""},
        {"--appendonly", "no"},
        {"--daemonize", "no"},
    };
    std::vector<std::string> args = {redis_binary()};
    for (const auto& [name, value] : settings) {
        args.push_back(name);
        args.push_back(value);
    }
    if (cluster_bus_port_ != 0) {
        args.emplace_back("--cluster-port");
        args.push_back(std::to_string(cluster_bus_port_));
    }
    args.insert(args.end(), options_.args.begin(), options_.args.end());
    std::string description;
    for (const auto& a : args) description += (description.empty() ? "" : " ") + a;

    // Everything the child needs is built before fork(): after it, only async-signal-safe calls.
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    const std::size_t log_start = file_size(log_path_);
    const int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0) throw std::runtime_error(system_error_text("open " + log_path_));
    const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);

    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
        ::close(log_fd);
        if (null_fd >= 0) ::close(null_fd);
        throw std::runtime_error(system_error_text("fork"));
    }
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(126);
        sigset_t none;
        ::sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        ::sigaction(SIGPIPE, &dfl, nullptr);
        if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
        ::dup2(log_fd, STDOUT_FILENO);
        ::dup2(log_fd, STDERR_FILENO);
        ::execvp(argv[0], argv.data());
        constexpr char msg[] = "redis_process: execvp redis-server failed\n";
        [[maybe_unused]] const auto ignored = ::write(STDERR_FILENO, msg, sizeof msg - 1);
        ::_exit(127);
    }
    ::close(log_fd);
    if (null_fd >= 0) ::close(null_fd);
    pid_ = pid;

    const auto deadline = clock::now() + options_.startup_timeout;
    for (;;) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            const auto output = read_file(log_path_, log_start);
            if (output.find("Address already in use") != std::string::npos) return false;
            throw std::runtime_error("redis-server " + describe_status(status) +
                                     " during start-up\ncommand: " + description +
                                     "\n---- log ----\n" + output +
                                     (WIFEXITED(status) && WEXITSTATUS(status) == 127
                                          ? "(is redis-server installed? scripts/install-deps.sh "
                                            "test, or set WSGATE_REDIS_SERVER)\n"
                                          : ""));
        }
        if (ping(port_) == probe_result::answered) return true;
        if (clock::now() >= deadline) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, &status, 0);
            pid_ = -1;
            throw std::runtime_error("redis-server did not answer PING within " +
                                     std::to_string(options_.startup_timeout.count()) +
                                     " ms\ncommand: " + description + "\n---- log ----\n" +
                                     read_file(log_path_, log_start));
        }
        // A bounded poll of a process we do not control: nothing to wait on but its port.
        std::this_thread::sleep_for(5ms);
    }
}

}  // namespace wsgate::test
