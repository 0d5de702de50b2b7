#include "support/child_wait.hpp"

#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

namespace wsgate::test {

std::optional<int> wait_child(pid_t pid, std::chrono::milliseconds timeout) {
    using clock = std::chrono::steady_clock;
    const auto deadline = clock::now() + timeout;
    const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    std::optional<int> result;
    for (;;) {
        int status = 0;
        const pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            result = status;
            break;
        }
        if (r < 0 && errno == ECHILD) {
            result = 0;
            break;
        }
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
        if (left.count() <= 0) break;
        if (pidfd >= 0) {
            pollfd p{pidfd, POLLIN, 0};
            ::poll(&p, 1, static_cast<int>(left.count()));
        } else {
            // No pidfd (old kernel): a short bounded poll of waitpid.
            std::this_thread::sleep_for(std::min(left, std::chrono::milliseconds{5}));
        }
    }
    if (pidfd >= 0) ::close(pidfd);
    return result;
}

}  // namespace wsgate::test
