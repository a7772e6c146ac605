/* The seed's count example in C: three counts on one loop thread. Each
 * prints "One", sets a one-second timer and returns; the loop runs the three
 * timer callbacks when due. Output: One One One Two Two Two, in one second. */
#include <stdio.h>
#include <stdlib.h>

#include "evloop.h"

static int counts_left = 3;

static void two(evl_loop *loop, void *data) {
    (void)data;
    printf("Two\n");
    if (--counts_left == 0)
        fprintf(stderr, "all counts done at %llu ms\n", (unsigned long long)evl_now_ms(loop));
}

static void count(evl_loop *loop) {
    printf("One\n");
    int rc = evl_set_timeout(loop, 1000, two, NULL, NULL, NULL);
    if (rc < 0) {
        fprintf(stderr, "evl_set_timeout: %s\n", evl_strerror(rc));
        exit(1);
    }
}

int main(void) {
    evl_loop *loop;
    int rc = evl_loop_new(&loop);
    if (rc < 0) {
        fprintf(stderr, "evl_loop_new: %s\n", evl_strerror(rc));
        return 1;
    }
    for (int i = 0; i < 3; i++)
        count(loop);
    rc = evl_run(loop, EVL_RUN_DEFAULT);
    if (rc < 0) {
        fprintf(stderr, "evl_run: %s\n", evl_strerror(rc));
        return 1;
    }
    return evl_loop_free(loop) == 0 ? 0 : 1;
}
