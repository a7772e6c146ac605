/* A program with its own poll() main loop that drives evloop, as libuv's
 * test-embed: it polls evloop's backend fd (with evloop's timeout) beside
 * its own fd, and calls evl_run(EVL_RUN_NOWAIT) whenever evloop may have
 * work. A second thread posts into evloop through a handle.
 *
 * The steps depend on each other, so the output is always:
 *   evloop timer 1            (10 ms timer; releases the thread)
 *   evloop got a post: hello from a thread
 *   evloop timer 2            (set by the post; writes to our own pipe)
 *   own fd readable           (seen by our poll(), not by evloop)
 *   done */
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <unistd.h>

#include "evloop.h"

static int own_pipe[2];
static sem_t go;

static void second_tick(evl_loop *loop, void *data) {
    (void)loop;
    (void)data;
    printf("evloop timer 2\n");
    if (write(own_pipe[1], "x", 1) != 1)
        perror("write");
}

static void posted(evl_loop *loop, void *data) {
    printf("evloop got a post: %s\n", (const char *)data);
    evl_set_timeout(loop, 10, second_tick, NULL, NULL, NULL);
}

static void first_tick(evl_loop *loop, void *data) {
    (void)loop;
    (void)data;
    printf("evloop timer 1\n");
    sem_post(&go);
}

static void *worker(void *arg) {
    evl_handle *h = arg;
    sem_wait(&go);
    evl_handle_post(h, posted, "hello from a thread", NULL);
    evl_handle_free(h);
    return NULL;
}

int main(void) {
    evl_loop *loop;
    if (evl_loop_new(&loop) < 0 || pipe(own_pipe) < 0 || sem_init(&go, 0, 0) < 0)
        return 1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    evl_set_timeout(loop, 10, first_tick, NULL, NULL, NULL);
    pthread_t t;
    pthread_create(&t, NULL, worker, evl_handle_new(loop));

    int own_done = 0;
    while (evl_is_alive(loop) || !own_done) {
        struct pollfd fds[2] = {
            {.fd = evl_backend_fd(loop), .events = POLLIN},
            {.fd = own_pipe[0], .events = POLLIN},
        };
        /* evloop's timeout: -1 (none) when it waits only for IO or posts,
         * and when nothing in it is alive, so this never spins. */
        int timeout = evl_backend_timeout(loop);
        if (poll(fds, 2, timeout) < 0)
            return 1;
        if (fds[1].revents & POLLIN) {
            char c;
            if (read(own_pipe[0], &c, 1) == 1)
                printf("own fd readable\n");
            own_done = 1;
        }
        if (evl_run(loop, EVL_RUN_NOWAIT) < 0)
            return 1;
    }
    pthread_join(t, NULL);
    printf("done\n");
    close(own_pipe[0]);
    close(own_pipe[1]);
    sem_destroy(&go);
    return evl_loop_free(loop) == 0 ? 0 : 1;
}
