#pragma once
// redis_cluster: a real Redis Cluster, started for one test.
//
// Lifetime: the constructor starts masters * (1 + replicas) redis-server processes (each a
// support/redis_process in its own temporary directory, on random free ports for clients and
// for the cluster bus, with --cluster-enabled yes and a short node timeout), forms the cluster
// with `redis-cli --cluster create` and returns once the cluster has settled (below); it throws
// std::runtime_error, with what had not settled, when that takes longer than settle_timeout.
// The destructor SIGKILLs every server and removes the directories; when the current test has
// failed it prints the cluster's last view (CLUSTER NODES) and every server's log.
//
// Settled means: every live server reports cluster_state:ok, every live replica reports
// master_link_status:up, and every live server's CLUSTER NODES shows the same owner for every
// slot (a live master, no slot importing or migrating) and the same role and master for every
// live server, none flagged fail or fail?. Each wait polls until then, with a deadline.
//
// The cluster is formed, and cli() runs, with redis-cli ($WSGATE_REDIS_CLI, else `redis-cli`
// from PATH) as a child process; the harness's own queries (each poll asks every server a few
// things) speak RESP to the servers directly, which costs no process per question.
//
// Thread safety: use from the test's thread only.

#include "support/redis_process.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace wsgate::test {

struct redis_cluster_options {
    int masters = 3;
    int replicas = 1;  // per master
    // Failure detection and automatic failover take a few node timeouts.
    std::chrono::milliseconds node_timeout{1'000};
    // The deadline of each wait for the cluster to settle.
    std::chrono::milliseconds settle_timeout{20'000};
    std::vector<std::string> server_args;  // extra redis-server arguments for every server
};

class redis_cluster {
public:
    explicit redis_cluster(redis_cluster_options options = {});
    ~redis_cluster();

    redis_cluster(const redis_cluster&) = delete;
    redis_cluster& operator=(const redis_cluster&) = delete;

    static constexpr std::uint16_t slot_count = 16384;

    // The live masters as the first live server sees them now (after a failover, the promoted
    // replica), by port.
    std::vector<std::uint16_t> master_ports();
    // Every server started, in start order, killed or not.
    std::vector<std::uint16_t> all_ports() const;
    // "127.0.0.1:P1,127.0.0.1:P2,..." for master_ports().
    std::string seed_nodes();

    // Runs `redis-cli -h 127.0.0.1 -p port -e args...` and returns its standard output without
    // the final newline. Throws std::runtime_error, with the output, when redis-cli fails or
    // the reply is an error.
    std::string cli(std::uint16_t port, const std::vector<std::string>& args);

    // The slot Redis Cluster assigns to `key`: CRC16 (XMODEM) of the hash tag (the text between
    // the first '{' and the next '}', when not empty) or else of the whole key, mod 16384.
    static std::uint16_t key_slot(std::string_view key);

    // The master serving `slot` as the first live server sees it now.
    std::uint16_t master_of_slot(std::uint16_t slot);
    // A live replica of the master on master_port (throws when it has none).
    std::uint16_t replica_of(std::uint16_t master_port);

    // CLUSTER FAILOVER on that replica, then waits until it is a master serving its former
    // master's slots and the cluster has settled.
    void failover(std::uint16_t replica_port);

    // SIGKILLs the server on `port` without waiting for the cluster to notice: a killed master
    // is replaced by one of its replicas after a few node timeouts (wait_for_owner()).
    void kill(std::uint16_t port);

    // Moves `slot` and its keys from its master to the master on to_port (one resharding step:
    // SETSLOT IMPORTING / MIGRATING, GETKEYSINSLOT + MIGRATE, SETSLOT NODE on every master),
    // then waits until the cluster has settled with to_port owning the slot.
    void move_slot(std::uint16_t slot, std::uint16_t to_port);

    // Waits until the cluster has settled.
    void wait_until_settled();
    // Waits until the cluster has settled with the master on `port` serving `slot`.
    void wait_for_owner(std::uint16_t slot, std::uint16_t port);

    redis_process& server(std::uint16_t port);  // its log, directory, pid

private:
    // What a wait needs beyond a settled cluster; 0 means nothing.
    struct settle_goal {
        std::uint16_t slot = 0;
        std::uint16_t slot_owner = 0;  // the port that must serve `slot`
        std::uint16_t master = 0;      // a port that must be a master
    };

    std::vector<std::uint16_t> live_ports() const;
    // Waits until unsettled_reason(goal) is empty; throws with the last reason after
    // settle_timeout.
    void wait_settled(const settle_goal& goal, std::string_view what);
    // Why the cluster has not settled or not reached `goal`; empty once it has.
    std::string unsettled_reason(const settle_goal& goal);

    redis_cluster_options options_;
    std::vector<std::unique_ptr<redis_process>> servers_;
    std::set<std::uint16_t> killed_;
};

}  // namespace wsgate::test
