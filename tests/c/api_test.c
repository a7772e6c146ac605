/* Exercises every function of evloop.h, error paths included. Run by
 * tests/c_api.rs (plain and under valgrind). Prints "N passed, N failed". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evloop.h"

#include "check.h"

/* ---- bookkeeping ---------------------------------------------------------- */

static int frees;     /* free_data calls */
static char trace[512];

static void count_free(void *data) {
    (void)data;
    frees++;
}

static void note(const char *s) {
    strncat(trace, s, sizeof trace - strlen(trace) - 1);
}

static void note_cb(evl_loop *loop, void *data) {
    (void)loop;
    note((const char *)data);
}

static evl_loop *new_loop(void) {
    evl_loop *loop = NULL;
    CHECK_EQ(evl_loop_new(&loop), 0);
    CHECK(loop != NULL);
    return loop;
}

/* ---- version and errors --------------------------------------------------- */

static void test_version_and_errors(void) {
    CHECK_EQ(evl_version(), EVL_VERSION_HEX);
    char expect[32];
    snprintf(expect, sizeof expect, "%d.%d.%d", EVL_VERSION_MAJOR, EVL_VERSION_MINOR,
             EVL_VERSION_PATCH);
    CHECK(strcmp(evl_version_string(), expect) == 0);
    CHECK(strcmp(evl_err_name(-EINVAL), "EINVAL") == 0);
    CHECK(strcmp(evl_err_name(-EBUSY), "EBUSY") == 0);
    CHECK(strcmp(evl_err_name(0), "OK") == 0);
    CHECK(strcmp(evl_err_name(-12345), "UNKNOWN") == 0);
    CHECK(strcmp(evl_strerror(0), "success") == 0);
    CHECK(strstr(evl_strerror(-ECONNREFUSED), "refused") != NULL);
    CHECK(strcmp(evl_strerror(-99999), "unknown error") == 0);
}

/* ---- NULL and bad arguments ----------------------------------------------- */

static void test_bad_arguments(void) {
    int before = frees;
    CHECK_EQ(evl_loop_new(NULL), -EINVAL);
    CHECK_EQ(evl_loop_free(NULL), -EINVAL);
    CHECK_EQ(evl_run(NULL, EVL_RUN_DEFAULT), -EINVAL);
    evl_stop(NULL);
    evl_update_time(NULL);
    CHECK_EQ(evl_now_ms(NULL), 0);
    CHECK_EQ(evl_is_alive(NULL), -EINVAL);
    CHECK_EQ(evl_call_soon(NULL, note_cb, "x", count_free), -EINVAL);
    CHECK_EQ(evl_set_timeout(NULL, 1, note_cb, "x", count_free, NULL), -EINVAL);
    CHECK_EQ(evl_clear_timer(NULL, 1), -EINVAL);
    CHECK_EQ(evl_io_start(NULL, 0, EVL_READABLE, NULL, NULL, NULL, NULL), -EINVAL);
    CHECK(evl_handle_new(NULL) == NULL);
    CHECK_EQ(evl_handle_post(NULL, note_cb, "x", count_free), -EINVAL);
    evl_handle_free(NULL);
    CHECK_EQ(evl_handle_set_ref(NULL, 0), -EINVAL);
    CHECK_EQ(evl_backend_fd(NULL), -EINVAL);
    CHECK_EQ(evl_backend_timeout(NULL), -EINVAL);

    evl_loop *loop = new_loop();
    CHECK_EQ(evl_run(loop, 3), -EINVAL);
    CHECK_EQ(evl_run(loop, -1), -EINVAL);
    CHECK_EQ(evl_call_soon(loop, NULL, "x", count_free), -EINVAL);
    CHECK_EQ(evl_set_timeout(loop, 1, NULL, "x", count_free, NULL), -EINVAL);
    CHECK_EQ(evl_set_interval(loop, 1, NULL, "x", count_free, NULL), -EINVAL);
    CHECK_EQ(evl_clear_timer(loop, 424242), 0);
    CHECK_EQ(evl_timer_set_ref(loop, 424242, 0), -ENOENT);
    CHECK_EQ(evl_io_modify(loop, 424242, EVL_READABLE), -ENOENT);
    CHECK_EQ(evl_io_stop(loop, 424242), -ENOENT);
    CHECK_EQ(evl_io_set_ref(loop, 424242, 0), -ENOENT);
    CHECK_EQ(evl_cancel_work(loop, 424242), -ENOENT);
    CHECK_EQ(evl_signal_stop(loop, 424242), -ENOENT);
    CHECK_EQ(evl_queue_work(loop, NULL, NULL, "x", count_free, NULL), -EINVAL);
    CHECK_EQ(evl_tcp_connect(loop, "not an ip", 80, NULL, "x", count_free), -EINVAL);
    CHECK_EQ(evl_tcp_connect(loop, NULL, 80, NULL, "x", count_free), -EINVAL);
    CHECK_EQ(evl_stream_read_stop(loop, (evl_stream *)&frees), -EINVAL); /* not a stream */
    CHECK_EQ(evl_server_close(loop, (evl_server *)&frees), -EINVAL);
    CHECK_EQ(evl_stream_write_queue_size(loop, NULL), -EINVAL);
    CHECK_EQ(frees, before); /* failed calls never call free_data */
    CHECK_EQ(evl_is_alive(loop), 0);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    CHECK_EQ(evl_loop_free(loop), 0);
}

/* ---- callbacks, timers, run modes ----------------------------------------- */

static evl_timer_id victim;
static int interval_calls;
static evl_timer_id interval_id;

static void clear_victim(evl_loop *loop, void *data) {
    (void)data;
    note("c");
    CHECK_EQ(evl_clear_timer(loop, victim), 1);
    CHECK_EQ(evl_clear_timer(loop, victim), 0);
}

static void interval_cb(evl_loop *loop, void *data) {
    (void)data;
    note("i");
    if (++interval_calls == 3) {
        CHECK_EQ(evl_clear_timer(loop, interval_id), 1);
    }
}

static void reentrant(evl_loop *loop, void *data) {
    (void)data;
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), -EBUSY);
    CHECK_EQ(evl_run(loop, EVL_RUN_NOWAIT), -EBUSY);
    CHECK_EQ(evl_loop_free(loop), -EBUSY);
    /* Scheduling from inside a callback works. */
    CHECK_EQ(evl_call_soon(loop, note_cb, "n", count_free), 0);
    note("r");
}

static void stopper(evl_loop *loop, void *data) {
    (void)data;
    note("s");
    evl_stop(loop);
}

static void test_timers_and_run_modes(void) {
    evl_loop *loop = new_loop();
    trace[0] = 0;
    int before = frees;
    CHECK_EQ(evl_call_soon(loop, note_cb, "a", count_free), 0);
    CHECK_EQ(evl_call_soon(loop, reentrant, NULL, NULL), 0);
    CHECK_EQ(evl_call_soon(loop, note_cb, "b", count_free), 0);
    CHECK_EQ(strlen(trace), 0); /* never inside the scheduling call */
    CHECK_EQ(evl_run(loop, EVL_RUN_NOWAIT), 1);  /* "n" is still queued */
    CHECK(strcmp(trace, "arb") == 0);
    CHECK_EQ(evl_run(loop, EVL_RUN_NOWAIT), 0);
    CHECK(strcmp(trace, "arbn") == 0);
    CHECK_EQ(frees - before, 3);

    /* Deadline order, ties in the order set, clearing a later timer. */
    trace[0] = 0;
    before = frees;
    evl_timer_id id = 0;
    CHECK_EQ(evl_set_timeout(loop, 20, note_cb, "3", count_free, &id), 0);
    CHECK(id != 0);
    CHECK_EQ(evl_set_timeout(loop, 5, note_cb, "1", count_free, NULL), 0);
    CHECK_EQ(evl_set_timeout(loop, 10, clear_victim, NULL, NULL, NULL), 0);
    CHECK_EQ(evl_set_timeout(loop, 10, note_cb, "X", count_free, &victim), 0);
    CHECK_EQ(evl_set_timeout(loop, 10, note_cb, "2", count_free, NULL), 0);
    CHECK_EQ(evl_set_timeout_ns(loop, 1500000, note_cb, "0", count_free, NULL), 0);
    CHECK_EQ(evl_set_interval(loop, 1, interval_cb, NULL, count_free, &interval_id), 0);
    uint64_t start = evl_now_ms(loop);
    CHECK_EQ(evl_is_alive(loop), 1);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    CHECK(evl_now_ms(loop) >= start + 20);
    /* "0" (1.5 ms) may interleave with the interval; the rest is exact. */
    char no_i[64] = {0};
    for (const char *p = trace; *p; p++)
        if (*p != 'i')
            strncat(no_i, p, 1);
    CHECK(strcmp(no_i, "01c23") == 0);
    CHECK_EQ(interval_calls, 3);
    CHECK_EQ(frees - before, 6); /* 5 timeouts incl. the cleared one, 1 interval */
    CHECK_EQ(evl_clear_timer(loop, id), 0); /* already ran */

    /* evl_stop: returns 1 while alive; a later run resumes. */
    trace[0] = 0;
    CHECK_EQ(evl_call_soon(loop, stopper, NULL, NULL), 0);
    CHECK_EQ(evl_set_timeout(loop, 5, note_cb, "t", NULL, NULL), 0);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 1);
    CHECK(strcmp(trace, "s") == 0);
    CHECK_EQ(evl_run(loop, EVL_RUN_ONCE), 0); /* blocks for the timer, runs it */
    CHECK(strcmp(trace, "st") == 0);

    /* unref'd timers do not keep the loop alive; ns intervals; backend timeout. */
    evl_timer_id weak;
    CHECK_EQ(evl_set_interval_ns(loop, 3600000000000ULL, note_cb, "w", count_free, &weak), 0);
    int t = evl_backend_timeout(loop);
    CHECK(t > 3500000 && t <= 3600000);
    CHECK_EQ(evl_timer_set_ref(loop, weak, 0), 0);
    CHECK_EQ(evl_is_alive(loop), 0);
    /* Nothing alive: no wake-up needed (not 0, which an embedder would spin on). */
    CHECK_EQ(evl_backend_timeout(loop), -1);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    evl_update_time(loop);
    CHECK(evl_backend_fd(loop) >= 0);

    /* Freeing drops pending work: free_data once, no callback. */
    before = frees;
    trace[0] = 0;
    CHECK_EQ(evl_call_soon(loop, note_cb, "never", count_free), 0);
    CHECK_EQ(evl_loop_free(loop), -EBUSY);
    CHECK_EQ(evl_run(loop, EVL_RUN_NOWAIT), 0);
    CHECK(strcmp(trace, "never") == 0);
    CHECK_EQ(evl_loop_free(loop), 0); /* the unref'd interval is dropped */
    CHECK_EQ(frees - before, 2);
}

/* ---- fd watchers ---------------------------------------------------------- */

static evl_io_id pipe_watch;
static int io_events_seen;

static void on_pipe(evl_loop *loop, int fd, int events, void *data) {
    (void)data;
    io_events_seen = events;
    char buf[16];
    ssize_t n = read(fd, buf, sizeof buf);
    CHECK_EQ(n, 5);
    CHECK_EQ(evl_io_stop(loop, pipe_watch), 0); /* inside its own callback */
}

/* A timer's callback never reads evl_now_ms() below its delay: the origin
 * is the loop's own time, which timers count from (it was taken after the
 * loop cached its time, so a 10 ms timer sometimes read 9). */
static uint64_t seen_now;
static void record_now(evl_loop *loop, void *data) {
    (void)data;
    seen_now = evl_now_ms(loop);
}

static void test_now_ms_counts_from_the_loop_time(void) {
    for (int i = 0; i < 20; i++) {
        evl_loop *loop;
        CHECK_EQ(evl_loop_new(&loop), 0);
        CHECK_EQ(evl_now_ms(loop), 0);
        seen_now = 0;
        CHECK_EQ(evl_set_timeout(loop, 10, record_now, NULL, NULL, NULL), 0);
        CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
        CHECK(seen_now >= 10);
        CHECK_EQ(evl_loop_free(loop), 0);
    }
}

static void test_io(void) {
    evl_loop *loop = new_loop();
    int fds[2];
    CHECK_EQ(pipe(fds), 0);
    int before = frees;
    CHECK_EQ(evl_io_start(loop, fds[0], EVL_READABLE, on_pipe, "p", count_free, &pipe_watch), 0);
    CHECK_EQ(evl_io_start(loop, fds[0], EVL_READABLE, on_pipe, "p", count_free, NULL), -EEXIST);
    CHECK_EQ(evl_io_start(loop, -1, EVL_READABLE, on_pipe, "p", count_free, NULL), -EBADF);
    CHECK_EQ(evl_io_start(loop, fds[0], 16, on_pipe, "p", count_free, NULL), -EINVAL);
    CHECK_EQ(evl_io_start(loop, fds[0], EVL_READABLE, NULL, "p", count_free, NULL), -EINVAL);
    int file = open("/proc/self/exe", O_RDONLY);
    CHECK_EQ(evl_io_start(loop, file, EVL_READABLE, on_pipe, "p", count_free, NULL), -EPERM);
    close(file);
    CHECK_EQ(frees, before);
    CHECK_EQ(evl_io_modify(loop, pipe_watch, 0), 0); /* paused */
    CHECK_EQ(evl_is_alive(loop), 0);
    CHECK_EQ(evl_io_modify(loop, pipe_watch, EVL_READABLE), 0);
    CHECK_EQ(evl_io_modify(loop, pipe_watch, 99), -EINVAL);
    CHECK_EQ(evl_io_set_ref(loop, pipe_watch, 0), 0);
    CHECK_EQ(evl_is_alive(loop), 0);
    CHECK_EQ(evl_io_set_ref(loop, pipe_watch, 1), 0);
    CHECK_EQ(evl_is_alive(loop), 1);
    CHECK_EQ(write(fds[1], "hello", 5), 5);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    CHECK_EQ(io_events_seen, EVL_READABLE);
    CHECK_EQ(frees - before, 1);
    CHECK_EQ(evl_io_stop(loop, pipe_watch), -ENOENT);

    /* A watcher left running is dropped by evl_loop_free (after unref). */
    evl_io_id w;
    CHECK_EQ(evl_io_start(loop, fds[1], EVL_WRITABLE, on_pipe, "w", count_free, &w), 0);
    CHECK_EQ(evl_loop_free(loop), -EBUSY);
    CHECK_EQ(evl_io_set_ref(loop, w, 0), 0);
    CHECK_EQ(evl_loop_free(loop), 0);
    CHECK_EQ(frees - before, 2);
    close(fds[0]);
    close(fds[1]);
}

/* ---- handles and threads --------------------------------------------------- */

static int posts_seen;

static void on_post(evl_loop *loop, void *data) {
    (void)loop;
    CHECK_EQ(*(int *)data, posts_seen);
    posts_seen++;
}

static void *poster(void *arg) {
    evl_handle *h = arg;
    static int values[100];
    for (int i = 0; i < 100; i++) {
        values[i] = i;
        CHECK_EQ(evl_handle_post(h, on_post, &values[i], count_free), 0);
    }
    evl_handle_free(h); /* on another thread */
    return NULL;
}

static void test_handles(void) {
    evl_loop *loop = new_loop();
    int before = frees;
    evl_handle *h = evl_handle_new(loop);
    CHECK(h != NULL);
    CHECK_EQ(evl_is_alive(loop), 1);
    CHECK_EQ(evl_handle_post(h, NULL, NULL, NULL), -EINVAL);
    pthread_t t;
    pthread_create(&t, NULL, poster, h);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0); /* ends when the handle is freed */
    pthread_join(t, NULL);
    CHECK_EQ(posts_seen, 100);
    CHECK_EQ(frees - before, 100);

    evl_handle *weak = evl_handle_new(loop);
    CHECK_EQ(evl_handle_set_ref(weak, 0), 0);
    CHECK_EQ(evl_is_alive(loop), 0);
    CHECK_EQ(evl_loop_free(loop), 0);
    before = frees;
    CHECK_EQ(evl_handle_post(weak, on_post, "x", count_free), -ESHUTDOWN);
    CHECK_EQ(frees, before); /* a failed post never frees */
    evl_handle_free(weak);
}

/* ---- blocking work --------------------------------------------------------- */

static sem_t started, release;
static int work_done_status[3] = {1, 1, 1};

static void blocking_work(void *data) {
    (void)data;
    sem_post(&started);
    sem_wait(&release);
}

static void quick_work(void *data) {
    *(int *)data *= 2;
}

static void work_done(evl_loop *loop, int status, void *data) {
    (void)loop;
    int *slot = data;
    work_done_status[slot == &work_done_status[0] ? 0 : slot == &work_done_status[1] ? 1 : 2] =
        status;
}

static int doubled = 21;
static void doubled_done(evl_loop *loop, int status, void *data) {
    (void)loop;
    CHECK_EQ(status, 0);
    CHECK_EQ(*(int *)data, 42);
}

static void test_work(void) {
    setenv("EVLOOP_THREADPOOL_SIZE", "1", 1);
    evl_loop *loop = new_loop();
    unsetenv("EVLOOP_THREADPOOL_SIZE");
    sem_init(&started, 0, 0);
    sem_init(&release, 0, 0);
    int before = frees;
    evl_work_id running, queued;
    CHECK_EQ(evl_queue_work(loop, blocking_work, work_done, &work_done_status[0], count_free, &running), 0);
    CHECK_EQ(evl_queue_work(loop, quick_work, work_done, &work_done_status[1], count_free, &queued), 0);
    sem_wait(&started); /* the only pool thread is busy */
    CHECK_EQ(evl_cancel_work(loop, running), -EBUSY);
    CHECK_EQ(evl_cancel_work(loop, queued), 0);
    CHECK_EQ(evl_cancel_work(loop, queued), -EBUSY);
    sem_post(&release);
    CHECK_EQ(evl_queue_work(loop, quick_work, doubled_done, &doubled, count_free, NULL), 0);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    CHECK_EQ(work_done_status[0], 0);
    CHECK_EQ(work_done_status[1], -ECANCELED);
    CHECK_EQ(doubled, 42);
    CHECK_EQ(frees - before, 3);
    CHECK_EQ(evl_cancel_work(loop, running), -EBUSY);  /* finished: the header says -EBUSY */
    CHECK_EQ(evl_cancel_work(loop, UINT64_MAX), -ENOENT); /* never issued */
    CHECK_EQ(evl_loop_free(loop), 0);
    sem_destroy(&started);
    sem_destroy(&release);
}

/* ---- signals --------------------------------------------------------------- */

static int signal_seen;
static void on_signal(evl_loop *loop, int signum, void *data) {
    (void)data;
    signal_seen = signum;
    evl_stop(loop);
}

static void test_signals(void) {
    evl_loop *loop = new_loop();
    int before = frees;
    evl_signal_id id;
    CHECK_EQ(evl_signal_start(loop, SIGKILL, on_signal, NULL, count_free, &id), -EINVAL);
    CHECK_EQ(evl_signal_start(loop, 0, on_signal, NULL, count_free, &id), -EINVAL);
    CHECK_EQ(evl_signal_start(loop, SIGUSR1, NULL, NULL, count_free, &id), -EINVAL);
    CHECK_EQ(frees, before);
    CHECK_EQ(evl_signal_start(loop, SIGUSR1, on_signal, NULL, count_free, &id), 0);
    CHECK_EQ(evl_is_alive(loop), 0); /* signal watchers do not keep it alive */
    CHECK_EQ(evl_signal_set_ref(loop, id, 1), 0);
    raise(SIGUSR1);
    CHECK_EQ(signal_seen, 0);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 1);
    CHECK_EQ(signal_seen, SIGUSR1);
    CHECK_EQ(evl_signal_stop(loop, id), 0);
    CHECK_EQ(evl_signal_stop(loop, id), -ENOENT);
    CHECK_EQ(frees - before, 1);
    CHECK_EQ(evl_loop_free(loop), 0);
}

/* ---- TCP ------------------------------------------------------------------- */

static evl_server *server;
static char echoed[64];
static size_t echoed_len;
static int write_status = 1, shutdown_status = 1, refused_status;

static void server_side_read(evl_loop *loop, evl_stream *s, ssize_t n, const char *buf, void *data) {
    (void)data;
    if (n > 0) {
        CHECK(evl_stream_write(loop, s, buf, (size_t)n, NULL, NULL, NULL) >= 0);
    } else {
        CHECK_EQ(n, 0);
        CHECK_EQ(evl_stream_close(loop, s, note_cb, "S", count_free), 0);
        CHECK_EQ(evl_server_close(loop, server), 0);
    }
}

static void on_connection(evl_loop *loop, evl_server *srv, int status, evl_stream *client, void *data) {
    (void)data;
    CHECK(srv == server);
    CHECK_EQ(status, 0);
    CHECK_EQ(evl_stream_read_start(loop, client, server_side_read, "r", count_free), 0);
}

static void client_read(evl_loop *loop, evl_stream *s, ssize_t n, const char *buf, void *data) {
    (void)data;
    if (n > 0) {
        memcpy(echoed + echoed_len, buf, (size_t)n);
        echoed_len += (size_t)n;
    } else {
        CHECK_EQ(n, 0); /* the server closed after our shutdown */
        CHECK_EQ(evl_stream_close(loop, s, note_cb, "C", count_free), 0);
        CHECK_EQ(evl_stream_close(loop, s, note_cb, "C", count_free), -ENOTCONN);
        CHECK(evl_stream_write(loop, s, "x", 1, NULL, NULL, NULL) == -ENOTCONN);
    }
}

static void status_into(evl_loop *loop, int status, void *data) {
    (void)loop;
    *(int *)data = status;
}

static void on_connect(evl_loop *loop, int status, evl_stream *s, void *data) {
    (void)data;
    CHECK_EQ(status, 0);
    CHECK(s != NULL);
    CHECK_EQ(evl_stream_write(loop, s, "hello, ", 7, status_into, &write_status, NULL), 1);
    CHECK_EQ(evl_stream_write(loop, s, "evloop", 6, NULL, NULL, NULL), 1);
    CHECK(evl_stream_write_queue_size(loop, s) >= 0);
    CHECK_EQ(evl_stream_write(loop, s, NULL, 3, NULL, NULL, NULL), -EINVAL);
    CHECK_EQ(evl_stream_shutdown(loop, s, status_into, &shutdown_status, count_free), 0);
    CHECK_EQ(evl_stream_write(loop, s, "late", 4, NULL, NULL, NULL), -EPIPE);
    CHECK_EQ(evl_stream_read_start(loop, s, client_read, NULL, NULL), 0);
}

static void on_refused(evl_loop *loop, int status, evl_stream *s, void *data) {
    (void)loop;
    (void)data;
    CHECK(s == NULL);
    refused_status = status;
}

static void test_tcp(void) {
    evl_loop *loop = new_loop();
    int before = frees;
    trace[0] = 0;
    CHECK_EQ(evl_tcp_listen(loop, "127.0.0.1", 0, 16, on_connection, "L", count_free, &server), 0);
    int port = evl_server_port(loop, server);
    CHECK(port > 0);
    CHECK_EQ(evl_tcp_listen(loop, "127.0.0.1", port, 16, on_connection, "L", count_free, NULL), -EINVAL);
    evl_server *clash;
    CHECK_EQ(evl_tcp_listen(loop, "127.0.0.1", 70000, 16, on_connection, "L", count_free, &clash), -EINVAL);
    CHECK_EQ(evl_tcp_connect(loop, "127.0.0.1", port, on_connect, NULL, NULL), 0);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    CHECK(echoed_len == 13 && memcmp(echoed, "hello, evloop", 13) == 0);
    CHECK_EQ(write_status, 0);
    CHECK_EQ(shutdown_status, 0);
    CHECK(strchr(trace, 'S') && strchr(trace, 'C'));
    /* read data r, listener L, shutdown, two close callbacks */
    CHECK_EQ(frees - before, 5);

    /* A port nobody listens on: the server above is closed now. */
    CHECK_EQ(evl_tcp_connect(loop, "127.0.0.1", port, on_refused, "R", count_free), 0);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    CHECK_EQ(refused_status, -ECONNREFUSED);
    CHECK_EQ(frees - before, 6);
    CHECK_EQ(evl_loop_free(loop), 0);
}

int main(void) {
    test_version_and_errors();
    test_bad_arguments();
    test_timers_and_run_modes();
    test_now_ms_counts_from_the_loop_time();
    test_io();
    test_handles();
    test_work();
    test_signals();
    test_tcp();
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
