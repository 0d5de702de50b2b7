#pragma once
// redis_process: one real redis-server, started for one test.
//
// Lifetime: the constructor picks a free port (redis refuses port 0, so a random port between
// 10000 and the low end of the kernel's ephemeral range that binds at that moment: a port in
// the ephemeral range may be some client's source port, which makes redis's bind fail; a launch
// that still fails to bind is retried on a new port), fork/execs
// `redis-server` with a temporary directory as its working dir, no persistence and no
// daemonizing, and returns once it answers PING; it throws std::runtime_error (with the
// server's log) when that does not happen within the start-up deadline. restart() starts a new
// server on the SAME port(s) (for recovery tests). The destructor SIGKILLs a server still running,
// prints the log when the current test has failed, and removes the directory. The child gets
// PR_SET_PDEATHSIG, so a crashed test binary leaves no server behind.
//
// The binary is $WSGATE_REDIS_SERVER, else `redis-server` from PATH.
//
// Thread safety: use from the test's thread only.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace wsgate::test {

struct redis_options {
    std::vector<std::string> args;  // extra arguments, e.g. {"--requirepass", "x"}
    std::chrono::milliseconds startup_timeout{10'000};
    // Also pick a free port for the cluster bus and pass --cluster-port (with
    // --cluster-enabled yes): redis's default, port + 10000, may be taken or ephemeral.
    bool cluster_bus_port = false;
};

class redis_process {
public:
    explicit redis_process(redis_options options);
    explicit redis_process(std::vector<std::string> args = {})
        : redis_process(redis_options{.args = std::move(args)}) {}
    ~redis_process();

    redis_process(const redis_process&) = delete;
    redis_process& operator=(const redis_process&) = delete;

    std::uint16_t port() const { return port_; }
    std::string url() const;  // redis://127.0.0.1:PORT
    // The --cluster-port given with redis_options::cluster_bus_port, else 0.
    std::uint16_t cluster_bus_port() const { return cluster_bus_port_; }
    pid_t pid() const { return pid_; }
    bool running();

    void stop();     // SIGTERM, then waits (SIGKILL after 10 s)
    void kill();     // SIGKILL, then waits
    void restart();  // a new server on the same port; the old one is killed first if running

    std::string log() const;  // the server's log so far (all its runs)
    const std::string& dir() const { return dir_; }

private:
    // Starts the server on port_ and waits for PING; false if it exited because the port was
    // taken; throws on any other failure.
    bool launch();

    redis_options options_;
    std::string dir_;
    std::string log_path_;
    std::uint16_t port_ = 0;
    std::uint16_t cluster_bus_port_ = 0;
    pid_t pid_ = -1;
};

}  // namespace wsgate::test
