#include "support/gateway_process.hpp"

#include "support/child_wait.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <thread>

extern char** environ;

namespace wsgate::test {

namespace {

using clock = std::chrono::steady_clock;

constexpr std::string_view listening_prefix = "wsgate listening on http://";

// Environment variables the gateway reads (docs/configuration.md): a developer's shell must
// not change what a test runs against.
constexpr std::string_view scrubbed_env[] = {
    "HOST",
    "PORT",
    "WSGATEWAY_PORT",
    "NODE_ID",
    "WORKERS",
    "JWT_SECRET",
    "JWT_PUBLIC_KEY_FILE",
    "JWT_LEEWAY_SECONDS",
    "AUTH_TIMEOUT_SECONDS",
    "IDLE_TIMEOUT_SECONDS",
    "PING_INTERVAL_SECONDS",
    "MAX_MESSAGE_SIZE",
    "MAX_CHANNELS_PER_CONNECTION",
    "MAX_CONNECTIONS",
    "MAX_OUTBOUND_BYTES",
    "ECHO_ENDPOINT",
    "ECHO_MAX_MESSAGE_SIZE",
    "SHUTDOWN_TIMEOUT_SECONDS",
    "LOG_LEVEL",
    "LOGGER_LEVEL",
    "WSGATE_CONFIG",
};

bool is_scrubbed(std::string_view entry) {
    const auto eq = entry.find('=');
    const auto name = entry.substr(0, eq);
    for (const auto s : scrubbed_env) {
        if (name == s) return true;
    }
    return false;
}

bool has_flag(const std::vector<std::string>& args, std::string_view flag) {
    for (const auto& a : args) {
        if (a == flag) return true;
        if (a.size() > flag.size() && a.compare(0, flag.size(), flag) == 0 && a[flag.size()] == '=')
            return true;
    }
    return false;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

exit_status decode_status(int status) {
    exit_status s;
    if (WIFEXITED(status)) {
        s.exited = true;
        s.code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        s.signal = WTERMSIG(status);
    }
    return s;
}

std::string system_error_text(std::string_view what) {
    return std::string(what) + ": " + std::strerror(errno);
}

// Parses the port out of "wsgate listening on http://HOST:PORT".
std::optional<std::uint16_t> parse_listening_line(std::string_view line) {
    const auto at = line.find(listening_prefix);
    if (at == std::string_view::npos) return std::nullopt;
    auto rest = line.substr(at + listening_prefix.size());
    while (!rest.empty() && (rest.back() == '\r' || rest.back() == ' ' || rest.back() == '/'))
        rest.remove_suffix(1);
    const auto colon = rest.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    const auto digits = rest.substr(colon + 1);
    unsigned value = 0;
    const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (ec != std::errc{} || ptr != digits.data() + digits.size() || value == 0 || value > 65535)
        return std::nullopt;
    return static_cast<std::uint16_t>(value);
}

}  // namespace

std::string exit_status::describe() const {
    if (exited) return "exited with code " + std::to_string(code);
    return std::string("killed by signal ") + std::to_string(signal) + " (" + strsignal(signal) +
           ")";
}

std::string gateway_binary_path() {
    if (const char* env = std::getenv("WSGATE_BINARY"); env != nullptr && *env != '\0') return env;
    return WSGATE_DEFAULT_BINARY;
}

// Reads the child's stdout after start-up so that it can never block on a full pipe.
struct gateway_process::stdout_drain {
    int fd;
    std::string text;
    mutable std::mutex mutex;
    std::atomic<bool> stop{false};
    std::thread thread;

    stdout_drain(int f, std::string already_read) : fd(f), text(std::move(already_read)) {}

    void start() {
        thread = std::thread([this] {
            char buf[4096];
            while (!stop.load()) {
                pollfd p{fd, POLLIN, 0};
                const int r = ::poll(&p, 1, 50);
                if (r < 0 && errno == EINTR) continue;
                if (r <= 0) continue;
                const auto n = ::read(fd, buf, sizeof buf);
                if (n < 0 && errno == EINTR) continue;
                if (n <= 0) break;
                std::lock_guard lock(mutex);
                text.append(buf, static_cast<std::size_t>(n));
            }
        });
    }

    ~stdout_drain() {
        stop = true;
        if (thread.joinable()) thread.join();
        ::close(fd);
    }

    std::string snapshot() const {
        std::lock_guard lock(mutex);
        return text;
    }
};

gateway_process::gateway_process(gateway_options options) {
    // A test writing to a socket the gateway closed must see EPIPE, not die.
    ::signal(SIGPIPE, SIG_IGN);

    const std::string binary = gateway_binary_path();
    if (::access(binary.c_str(), X_OK) != 0) {
        throw std::runtime_error("wsgate binary not found or not executable at '" + binary +
                                 "': build the `wsgate` target (or `wsgate_integration`), or "
                                 "set WSGATE_BINARY to its path");
    }

    std::vector<std::string> args;
    args.push_back(binary);
    if (!has_flag(options.args, "--host")) {
        args.emplace_back("--host");
        args.emplace_back("127.0.0.1");
    }
    if (!has_flag(options.args, "--port")) {
        args.emplace_back("--port");
        args.emplace_back("0");
    }
    args.insert(args.end(), options.args.begin(), options.args.end());
    for (const auto& a : args) description_ += (description_.empty() ? "" : " ") + a;

    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
        if (!is_scrubbed(*e)) env.emplace_back(*e);
    }
    for (const auto& [name, value] : options.env) env.push_back(name + "=" + value);

    // Everything the child needs is built before fork(): after it, only async-signal-safe calls.
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);

    const char* tmpdir = std::getenv("TMPDIR");
    std::string log_template =
        std::string(tmpdir != nullptr && *tmpdir ? tmpdir : "/tmp") + "/wsgate-it-stderr-XXXXXX";
    const int err_fd = ::mkostemp(log_template.data(), O_CLOEXEC);
    if (err_fd < 0) throw std::runtime_error(system_error_text("mkostemp for the stderr log"));
    stderr_path_ = log_template;

    int out_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
        ::close(err_fd);
        throw std::runtime_error(system_error_text("pipe2"));
    }
    const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);

    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
        ::close(err_fd);
        ::close(out_pipe[0]);
        ::close(out_pipe[1]);
        if (null_fd >= 0) ::close(null_fd);
        throw std::runtime_error(system_error_text("fork"));
    }
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(126);
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        ::sigaction(SIGPIPE, &dfl, nullptr);
        sigset_t none;
        ::sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
        ::dup2(out_pipe[1], STDOUT_FILENO);
        ::dup2(err_fd, STDERR_FILENO);
        ::execve(argv[0], argv.data(), envp.data());
        constexpr char msg[] = "gateway_process: execve failed\n";
        [[maybe_unused]] const auto ignored = ::write(STDERR_FILENO, msg, sizeof msg - 1);
        ::_exit(127);
    }
    pid_ = pid;
    ::close(out_pipe[1]);
    ::close(err_fd);
    if (null_fd >= 0) ::close(null_fd);
    const int out_fd = out_pipe[0];

    // Read stdout until the listening line, the deadline, or EOF.
    std::string seen;
    std::optional<std::uint16_t> port;
    std::string failure;
    std::size_t line_start = 0;  // first byte of the line not yet complete
    const auto deadline = clock::now() + options.startup_timeout;
    while (!port) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
        if (left.count() <= 0) {
            failure = "no '" + std::string(listening_prefix) + "...' line on stdout within " +
                      std::to_string(options.startup_timeout.count()) + " ms";
            break;
        }
        pollfd p{out_fd, POLLIN, 0};
        const int r = ::poll(&p, 1, static_cast<int>(left.count()));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) continue;
        char buf[1024];
        const auto n = ::read(out_fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            failure = "the gateway closed stdout before printing its listening line";
            break;
        }
        seen.append(buf, static_cast<std::size_t>(n));
        for (std::size_t nl; !port && (nl = seen.find('\n', line_start)) != std::string::npos;
             line_start = nl + 1) {
            port = parse_listening_line(std::string_view(seen).substr(line_start, nl - line_start));
        }
    }

    stdout_ = std::make_unique<stdout_drain>(out_fd, seen);
    if (!port) {
        if (auto st = wait_exit(std::chrono::milliseconds{200})) {
            failure += "; the process " + st->describe();
        }
        if (!exit_) {
            ::kill(pid_, SIGKILL);
            wait_exit(std::chrono::seconds{5});
        }
        expected_exit_ = true;
        throw std::runtime_error("gateway did not start: " + failure +
                                 "\ncommand: " + description_ + "\n---- stdout ----\n" + seen +
                                 "\n---- stderr ----\n" + read_file(stderr_path_));
    }
    port_ = *port;
    stdout_->start();
}

gateway_process::~gateway_process() {
    if (pid_ > 0 && !exit_) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            exit_ = decode_status(status);
        } else {
            expected_exit_ = true;
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, &status, 0);
            exit_ = decode_status(status);
        }
    }
    if (exit_ && !expected_exit_) {
        // A node that died while the test thought it was running is a bug worth a failure.
        ADD_FAILURE() << "the gateway exited unexpectedly: " << exit_->describe()
                      << "\ncommand: " << description_;
    }
    stdout_.reset();
    if (!stderr_path_.empty()) {
        // An exception on its way to GoogleTest is a failure not recorded yet.
        if (::testing::Test::HasFailure() || std::uncaught_exceptions() > 0) {
            std::cerr << "---- wsgate (pid " << pid_ << ") stderr ----\ncommand: " << description_
                      << "\n"
                      << read_file(stderr_path_) << "---- end of wsgate stderr ----\n";
        }
        ::unlink(stderr_path_.c_str());
    }
}

bool gateway_process::running() {
    if (exit_) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exit_ = decode_status(status);
        return false;
    }
    return true;
}

void gateway_process::send_signal(int sig) {
    if (!running()) throw std::runtime_error("send_signal: the gateway is not running");
    if (sig == SIGTERM || sig == SIGINT || sig == SIGKILL) expected_exit_ = true;
    ::kill(pid_, sig);
}

std::optional<exit_status> gateway_process::wait_exit(std::chrono::milliseconds timeout) {
    if (exit_) return exit_;
    if (const auto status = wait_child(pid_, timeout)) exit_ = decode_status(*status);
    return exit_;
}

exit_status gateway_process::terminate(std::chrono::milliseconds timeout) {
    if (!exit_) {
        expected_exit_ = true;
        ::kill(pid_, SIGTERM);
        if (!wait_exit(timeout)) {
            ADD_FAILURE() << "the gateway did not exit within " << timeout.count()
                          << " ms of SIGTERM; sending SIGKILL";
            ::kill(pid_, SIGKILL);
            wait_exit(std::chrono::seconds{10});
        }
    }
    return exit_.value_or(exit_status{});
}

std::string gateway_process::stderr_log() const {
    return read_file(stderr_path_);
}

std::string gateway_process::stdout_log() const {
    return stdout_ ? stdout_->snapshot() : "";
}

}  // namespace wsgate::test
