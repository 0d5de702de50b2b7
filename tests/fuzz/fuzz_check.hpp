#pragma once
// Invariant checks for fuzz targets: a broken invariant prints what broke and aborts, so that
// libFuzzer (and the replay driver) report the input as a crash.

#include <cstdio>
#include <cstdlib>

#define WSGATE_FUZZ_CHECK(condition)                                                       \
    do {                                                                                   \
        if (!(condition)) {                                                                \
            std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, \
                         #condition);                                                      \
            std::abort();                                                                  \
        }                                                                                  \
    } while (false)
