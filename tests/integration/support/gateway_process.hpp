#pragma once
// gateway_process: one real wsgate binary, started for one test.
//
// Lifetime: the constructor fork/execs the binary (with `--host 127.0.0.1 --port 0` unless the
// arguments name them), reads its stdout until `wsgate listening on http://HOST:PORT` and
// returns once the node listens; it throws std::runtime_error (with the captured stderr) if the
// line does not come within the start-up deadline. stderr goes to a temporary log file that is
// printed when the current test has failed. The destructor SIGKILLs a node still running and
// reports a node that died on its own (a crash) as a test failure. The child also gets
// PR_SET_PDEATHSIG, so a crashed test binary leaves no gateway behind.
//
// Thread safety: use from the test's thread only. A helper thread drains stdout after start-up.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace wsgate::test {

// The binary under test: $WSGATE_BINARY, else the build tree's wsgate.
std::string gateway_binary_path();

struct exit_status {
    bool exited = false;  // true: normal exit with `code`; false: killed by `signal`
    int code = 0;
    int signal = 0;

    bool clean() const { return exited && code == 0; }
    std::string describe() const;
};

struct gateway_options {
    std::vector<std::string> args;                         // after the binary name
    std::vector<std::pair<std::string, std::string>> env;  // added to a scrubbed environment
    std::chrono::milliseconds startup_timeout{10'000};
};

class gateway_process {
public:
    explicit gateway_process(gateway_options options);
    explicit gateway_process(std::vector<std::string> args = {})
        : gateway_process(gateway_options{std::move(args), {}, std::chrono::milliseconds{10'000}}) {
    }
    ~gateway_process();

    gateway_process(const gateway_process&) = delete;
    gateway_process& operator=(const gateway_process&) = delete;

    std::uint16_t port() const { return port_; }
    pid_t pid() const { return pid_; }
    bool running();

    void send_signal(int sig);
    // Waits for the process to exit; nullopt if it is still running at the deadline.
    std::optional<exit_status> wait_exit(std::chrono::milliseconds timeout);
    // SIGTERM, wait up to `timeout`, then SIGKILL; returns how the process ended.
    exit_status terminate(std::chrono::milliseconds timeout = std::chrono::seconds{15});

    std::string stderr_log() const;
    std::string stdout_log() const;

private:
    struct stdout_drain;

    pid_t pid_ = -1;
    std::uint16_t port_ = 0;
    std::optional<exit_status> exit_;
    bool expected_exit_ = false;
    std::string stderr_path_;
    std::string description_;
    std::unique_ptr<stdout_drain> stdout_;
};

}  // namespace wsgate::test
