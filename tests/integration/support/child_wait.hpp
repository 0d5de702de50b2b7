#pragma once
// Waiting for a child process of the test to exit, without sleeping as synchronization: a
// pidfd wakes the wait the moment the child ends (a short bounded waitpid poll only where the
// kernel has no pidfd).

#include <sys/types.h>

#include <chrono>
#include <optional>

namespace wsgate::test {

// The child's wait status once it has exited, or nullopt if it still runs after `timeout`.
// A child that was already reaped (ECHILD) counts as exited with status 0.
std::optional<int> wait_child(pid_t pid, std::chrono::milliseconds timeout);

}  // namespace wsgate::test
