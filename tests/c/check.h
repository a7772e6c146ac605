/* The check macros shared by the C test programs in tests/c/: each check
 * counts as passed or failed, a failure prints FILE:LINE on stderr, and the
 * program ends by printing "N passed, M failed". */
#ifndef EVLOOP_TEST_CHECK_H
#define EVLOOP_TEST_CHECK_H

#include <stdio.h>

static int passed, failed;

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (cond) {                                                          \
            passed++;                                                        \
        } else {                                                             \
            failed++;                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                  \
        }                                                                    \
    } while (0)
#define CHECK_EQ(a, b)                                                          \
    do {                                                                        \
        long long a_ = (long long)(a), b_ = (long long)(b);                     \
        if (a_ == b_) {                                                         \
            passed++;                                                           \
        } else {                                                                \
            failed++;                                                           \
            fprintf(stderr, "%s:%d: %s == %lld, expected %lld\n", __FILE__,     \
                    __LINE__, #a, a_, b_);                                      \
        }                                                                       \
    } while (0)

#endif
