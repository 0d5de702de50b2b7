#pragma once

// Ctrl-C (SIGINT) or SIGTERM ends the current phase early; the scenario still reports what it
// measured so far. The handler only sets a flag that the event loop polls.

#include <csignal>

namespace wsgate::bench {

inline volatile std::sig_atomic_t interrupt_flag = 0;

inline bool interrupted() {
    return interrupt_flag != 0;
}

inline void install_interrupt_handler() {
    struct sigaction sa {};
    sa.sa_handler = [](int) { interrupt_flag = 1; };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
}

}  // namespace wsgate::bench
