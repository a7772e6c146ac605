/* Attacks the C API with hostile input and checks the answer include/evloop.h
 * documents for each case: NULL for every pointer parameter, stale ids and
 * stale object pointers, huge and out-of-range values, calls made from inside
 * callbacks and from inside free_data, and the "free_data exactly once, never
 * for a failed call" rule (every data pointer below is a counted token).
 *
 * Where the header is silent, the expected value is what libuv does, and the
 * check says so in a comment ("header silent").
 *
 * Cases that may crash the process (a bug would abort or corrupt memory) run
 * in a forked child, so that one crash costs one failed check, not the run.
 *
 * Run by tests/c_api.rs, plain and under -fsanitize=address,undefined (and
 * .ci/run under valgrind). Prints one line per failed check on stderr and
 * ends with "N passed, M failed" on stdout; exits non-zero when M > 0. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evloop.h"

#include "check.h"

/* ---- counted data tokens ----------------------------------------------------
 * Every data pointer handed to evloop is a token: its free_data (tfree)
 * counts calls, and callbacks record whether they ran after free_data. */

typedef struct {
    const char *name;
    int freed; /* free_data calls */
    int calls; /* callback calls */
    int late;  /* callback calls after free_data ran */
} tok;

static tok tokens[512];
static int ntokens;

static tok *tk(const char *name) {
    if (ntokens == (int)(sizeof tokens / sizeof tokens[0])) {
        fprintf(stderr, "out of tokens\n");
        abort();
    }
    tok *t = &tokens[ntokens++];
    memset(t, 0, sizeof *t);
    t->name = name;
    return t;
}

static void tfree(void *p) {
    ((tok *)p)->freed++;
}

static void touch(tok *t) {
    t->calls++;
    if (t->freed)
        t->late++;
}

/* free_data must have run exactly n times for token t. */
#define FREED(t, n)                                                                  \
    do {                                                                             \
        if ((t)->freed == (n)) {                                                     \
            passed++;                                                                \
        } else {                                                                     \
            failed++;                                                                \
            fprintf(stderr, "%s:%d: free_data of '%s' ran %d times, expected %d\n", \
                    __FILE__, __LINE__, (t)->name, (t)->freed, (n));                 \
        }                                                                            \
    } while (0)
#define CALLS(t, n)                                                                 \
    do {                                                                            \
        if ((t)->calls == (n)) {                                                    \
            passed++;                                                               \
        } else {                                                                    \
            failed++;                                                               \
            fprintf(stderr, "%s:%d: callback of '%s' ran %d times, expected %d\n", \
                    __FILE__, __LINE__, (t)->name, (t)->calls, (n));                \
        }                                                                           \
    } while (0)

/* From inside any callback (or free_data run by evl_run) of `loop`. */
#define REENTER(loop)                                             \
    do {                                                          \
        CHECK_EQ(evl_run((loop), EVL_RUN_DEFAULT), -EBUSY);       \
        CHECK_EQ(evl_run((loop), EVL_RUN_ONCE), -EBUSY);          \
        CHECK_EQ(evl_run((loop), EVL_RUN_NOWAIT), -EBUSY);        \
        CHECK_EQ(evl_loop_free((loop)), -EBUSY);                  \
    } while (0)

static evl_loop *new_loop(void) {
    evl_loop *loop = NULL;
    CHECK_EQ(evl_loop_new(&loop), 0);
    CHECK(loop != NULL);
    return loop;
}

/* A loop that must be empty now: not alive, and freed. */
#define FREE_LOOP(loop)                             \
    do {                                            \
        CHECK_EQ(evl_is_alive(loop), 0);            \
        CHECK_EQ(evl_loop_free(loop), 0);           \
    } while (0)

static void tcb(evl_loop *loop, void *data) {
    (void)loop;
    touch(data);
}
static void tio(evl_loop *loop, int fd, int events, void *data) {
    (void)loop, (void)fd, (void)events;
    touch(data);
}
static void twork(void *data) {
    (void)data;
}
static void tstatus(evl_loop *loop, int status, void *data) {
    (void)loop, (void)status;
    touch(data);
}
static void tsignal(evl_loop *loop, int signum, void *data) {
    (void)loop, (void)signum;
    touch(data);
}
static void tconn(evl_loop *loop, evl_server *srv, int status, evl_stream *client, void *data) {
    (void)srv, (void)status;
    touch(data);
    if (client)
        evl_stream_close(loop, client, NULL, NULL, NULL);
}
static void tconnect(evl_loop *loop, int status, evl_stream *s, void *data) {
    (void)status;
    touch(data);
    if (s)
        evl_stream_close(loop, s, NULL, NULL, NULL);
}
static void tread(evl_loop *loop, evl_stream *s, ssize_t n, const char *buf, void *data) {
    (void)loop, (void)s, (void)n, (void)buf;
    touch(data);
}

/* Runs fn in a forked child (for cases whose bug would crash the process):
 * its checks count here; dying counts as one failed check. */
static void in_child(const char *name, void (*fn)(void)) {
    fflush(stdout);
    fflush(stderr);
    int p[2];
    if (pipe(p) != 0) {
        failed++;
        perror("pipe");
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        alarm(60);
        passed = failed = 0;
        fn();
        int counts[2] = {passed, failed};
        if (write(p[1], counts, sizeof counts) != (ssize_t)sizeof counts)
            _exit(3);
        fflush(stderr);
        _exit(0);
    }
    close(p[1]);
    int counts[2] = {0, 0};
    ssize_t n = read(p[0], counts, sizeof counts);
    close(p[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    if (n == (ssize_t)sizeof counts) {
        passed += counts[0];
        failed += counts[1];
    }
    if (n == (ssize_t)sizeof counts && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        passed++;
    } else {
        failed++;
        if (WIFSIGNALED(st))
            fprintf(stderr, "%s: the child died of signal %d (%s)\n", name, WTERMSIG(st),
                    strsignal(WTERMSIG(st)));
        else
            fprintf(stderr, "%s: the child exited with %d before finishing\n", name,
                    WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    }
}

/* ---- sockets for the peer side (plain, blocking) ---------------------------- */

static evl_server *listen_any(evl_loop *loop, evl_connection_cb cb, void *data,
                              evl_free_cb free_data) {
    evl_server *srv = NULL;
    CHECK_EQ(evl_tcp_listen(loop, "127.0.0.1", 0, 16, cb, data, free_data, &srv), 0);
    CHECK(srv != NULL);
    return srv;
}

static int peer_connect(int port, int rcvbuf) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* ==== 1. NULL for every pointer parameter ==================================== */

static int null_data_frees;
static void count_null_free(void *data) {
    CHECK(data == NULL);
    null_data_frees++;
}
static void null_data_cb(evl_loop *loop, void *data) {
    (void)loop;
    CHECK(data == NULL);
}

static void test_null_pointers(void) {
    tok *t = tk("null-args");
    evl_timer_id tid = 0;
    evl_io_id iid = 0;
    evl_work_id wid = 0;
    evl_signal_id sid = 0;
    evl_server *srv = NULL;
    int fds[2];
    CHECK_EQ(pipe(fds), 0);

    CHECK_EQ(evl_loop_new(NULL), -EINVAL);
    CHECK_EQ(evl_loop_free(NULL), -EINVAL);
    CHECK_EQ(evl_run(NULL, EVL_RUN_DEFAULT), -EINVAL);
    CHECK_EQ(evl_run(NULL, EVL_RUN_ONCE), -EINVAL);
    CHECK_EQ(evl_run(NULL, EVL_RUN_NOWAIT), -EINVAL);
    evl_stop(NULL);
    evl_update_time(NULL);
    CHECK_EQ(evl_now_ms(NULL), 0);
    CHECK_EQ(evl_is_alive(NULL), -EINVAL);
    CHECK_EQ(evl_call_soon(NULL, tcb, t, tfree), -EINVAL);
    CHECK_EQ(evl_set_timeout(NULL, 1, tcb, t, tfree, &tid), -EINVAL);
    CHECK_EQ(evl_set_interval(NULL, 1, tcb, t, tfree, &tid), -EINVAL);
    CHECK_EQ(evl_set_timeout_ns(NULL, 1, tcb, t, tfree, &tid), -EINVAL);
    CHECK_EQ(evl_set_interval_ns(NULL, 1, tcb, t, tfree, &tid), -EINVAL);
    /* Header silent on *out after a failure: asserted left as it was
     * (evloop writes it only on success). */
    CHECK_EQ(tid, 0);
    CHECK_EQ(evl_clear_timer(NULL, 1), -EINVAL);
    CHECK_EQ(evl_timer_set_ref(NULL, 1, 0), -EINVAL);
    CHECK_EQ(evl_io_start(NULL, fds[0], EVL_READABLE, tio, t, tfree, &iid), -EINVAL);
    CHECK_EQ(evl_io_modify(NULL, 1, EVL_READABLE), -EINVAL);
    CHECK_EQ(evl_io_stop(NULL, 1), -EINVAL);
    CHECK_EQ(evl_io_set_ref(NULL, 1, 0), -EINVAL);
    CHECK(evl_handle_new(NULL) == NULL);
    CHECK_EQ(evl_handle_post(NULL, tcb, t, tfree), -EINVAL);
    CHECK_EQ(evl_handle_set_ref(NULL, 0), -EINVAL);
    evl_handle_free(NULL);
    CHECK_EQ(evl_backend_fd(NULL), -EINVAL);
    CHECK_EQ(evl_backend_timeout(NULL), -EINVAL);
    CHECK_EQ(evl_queue_work(NULL, twork, tstatus, t, tfree, &wid), -EINVAL);
    CHECK_EQ(evl_cancel_work(NULL, 1), -EINVAL);
    CHECK_EQ(evl_signal_start(NULL, SIGUSR1, tsignal, t, tfree, &sid), -EINVAL);
    CHECK_EQ(evl_signal_stop(NULL, 1), -EINVAL);
    CHECK_EQ(evl_signal_set_ref(NULL, 1, 0), -EINVAL);
    CHECK_EQ(evl_tcp_listen(NULL, "127.0.0.1", 0, 16, tconn, t, tfree, &srv), -EINVAL);
    CHECK(srv == NULL);
    CHECK_EQ(evl_server_port(NULL, (evl_server *)t), -EINVAL);
    CHECK_EQ(evl_server_close(NULL, (evl_server *)t), -EINVAL);
    CHECK_EQ(evl_tcp_connect(NULL, "127.0.0.1", 1, tconnect, t, tfree), -EINVAL);
    CHECK_EQ(evl_stream_read_start(NULL, (evl_stream *)t, tread, t, tfree), -EINVAL);
    CHECK_EQ(evl_stream_read_stop(NULL, (evl_stream *)t), -EINVAL);
    CHECK_EQ(evl_stream_write(NULL, (evl_stream *)t, "x", 1, tstatus, t, tfree), -EINVAL);
    CHECK_EQ(evl_stream_write_queue_size(NULL, (evl_stream *)t), -EINVAL);
    CHECK_EQ(evl_stream_shutdown(NULL, (evl_stream *)t, tstatus, t, tfree), -EINVAL);
    CHECK_EQ(evl_stream_close(NULL, (evl_stream *)t, tcb, t, tfree), -EINVAL);

    /* A live loop, and NULL for each other pointer in turn. */
    evl_loop *loop = new_loop();
    CHECK_EQ(evl_call_soon(loop, NULL, t, tfree), -EINVAL);
    CHECK_EQ(evl_set_timeout(loop, 1, NULL, t, tfree, &tid), -EINVAL);
    CHECK_EQ(evl_set_interval(loop, 1, NULL, t, tfree, &tid), -EINVAL);
    CHECK_EQ(evl_set_timeout_ns(loop, 1, NULL, t, tfree, &tid), -EINVAL);
    CHECK_EQ(evl_set_interval_ns(loop, 1, NULL, t, tfree, &tid), -EINVAL);
    CHECK_EQ(tid, 0);
    CHECK_EQ(evl_io_start(loop, fds[0], EVL_READABLE, NULL, t, tfree, &iid), -EINVAL);
    CHECK_EQ(evl_io_start(loop, fds[0], 0, NULL, t, tfree, &iid), -EINVAL);
    CHECK_EQ(iid, 0);
    CHECK_EQ(evl_queue_work(loop, NULL, tstatus, t, tfree, &wid), -EINVAL);
    CHECK_EQ(wid, 0);
    CHECK_EQ(evl_signal_start(loop, SIGUSR1, NULL, t, tfree, &sid), -EINVAL);
    CHECK_EQ(sid, 0);
    CHECK_EQ(evl_tcp_listen(loop, NULL, 0, 16, tconn, t, tfree, &srv), -EINVAL);
    CHECK_EQ(evl_tcp_listen(loop, "127.0.0.1", 0, 16, NULL, t, tfree, &srv), -EINVAL);
    /* out NULL: the server could never be closed. */
    CHECK_EQ(evl_tcp_listen(loop, "127.0.0.1", 0, 16, tconn, t, tfree, NULL), -EINVAL);
    CHECK(srv == NULL);
    CHECK_EQ(evl_server_port(loop, NULL), -EINVAL);
    CHECK_EQ(evl_server_close(loop, NULL), -EINVAL);
    CHECK_EQ(evl_tcp_connect(loop, NULL, 80, tconnect, t, tfree), -EINVAL);
    CHECK_EQ(evl_tcp_connect(loop, "127.0.0.1", 80, NULL, t, tfree), -EINVAL);
    CHECK_EQ(evl_stream_read_start(loop, NULL, tread, t, tfree), -EINVAL);
    CHECK_EQ(evl_stream_read_stop(loop, NULL), -EINVAL);
    CHECK_EQ(evl_stream_write(loop, NULL, "x", 1, tstatus, t, tfree), -EINVAL);
    CHECK_EQ(evl_stream_write_queue_size(loop, NULL), -EINVAL);
    CHECK_EQ(evl_stream_shutdown(loop, NULL, tstatus, t, tfree), -EINVAL);
    CHECK_EQ(evl_stream_close(loop, NULL, tcb, t, tfree), -EINVAL);
    /* Pointers evloop never gave out (header: a non-NULL pointer must be
     * one evloop gave you; streams and servers are checked anyway). */
    CHECK_EQ(evl_server_port(loop, (evl_server *)t), -EINVAL);
    CHECK_EQ(evl_stream_read_start(loop, (evl_stream *)t, tread, t, tfree), -EINVAL);
    CHECK_EQ(evl_stream_write(loop, (evl_stream *)t, "x", 1, tstatus, t, tfree), -EINVAL);
    CHECK_EQ(evl_stream_shutdown(loop, (evl_stream *)t, tstatus, t, tfree), -EINVAL);
    CHECK_EQ(evl_stream_close(loop, (evl_stream *)t, tcb, t, tfree), -EINVAL);
    CHECK_EQ(evl_stream_write_queue_size(loop, (evl_stream *)t), -EINVAL);
    FREED(t, 0); /* no failed call ever calls free_data */
    CALLS(t, 0);

    /* NULL data and NULL free_data are fine; free_data(NULL) runs once. */
    null_data_frees = 0;
    CHECK_EQ(evl_call_soon(loop, null_data_cb, NULL, count_null_free), 0);
    CHECK_EQ(evl_call_soon(loop, null_data_cb, NULL, NULL), 0);
    CHECK_EQ(evl_set_timeout(loop, 0, null_data_cb, NULL, count_null_free, NULL), 0);
    CHECK_EQ(evl_queue_work(loop, twork, NULL, NULL, count_null_free, NULL), 0); /* done NULL */
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    CHECK_EQ(null_data_frees, 3);
    FREE_LOOP(loop);
    close(fds[0]);
    close(fds[1]);
}

/* ==== 2. errors: every errno the header names has a name and a message ====== */

static void test_error_strings(void) {
    const int documented[] = {EINVAL,   EBUSY,   ENOTRECOVERABLE, EPIPE,   ENOENT,
                              EBADF,    EPERM,   EEXIST,          ESHUTDOWN, ECANCELED,
                              ECONNREFUSED, ECONNRESET, ENOTCONN};
    for (size_t i = 0; i < sizeof documented / sizeof documented[0]; i++) {
        const char *name = evl_err_name(-documented[i]);
        const char *msg = evl_strerror(-documented[i]);
        CHECK(name != NULL && strcmp(name, "UNKNOWN") != 0);
        CHECK(msg != NULL && strcmp(msg, "unknown error") != 0);
    }
    CHECK(strcmp(evl_err_name(-ESHUTDOWN), "ESHUTDOWN") == 0);
    CHECK(strcmp(evl_err_name(-ENOTRECOVERABLE), "ENOTRECOVERABLE") == 0);
    /* Values that are no errno at all: documented fallbacks, never NULL. */
    const int odd[] = {INT_MIN, INT_MIN + 1, -100000, -4096, INT_MAX};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        CHECK(evl_err_name(odd[i]) != NULL && strcmp(evl_err_name(odd[i]), "UNKNOWN") == 0);
        CHECK(evl_strerror(odd[i]) != NULL && strcmp(evl_strerror(odd[i]), "unknown error") == 0);
    }
    /* A documented positive return value (evl_run's 1) still gets a string. */
    CHECK(evl_err_name(1) != NULL && evl_strerror(1) != NULL);
}

/* ==== 3. stale ids ============================================================ */

static evl_work_id own_work;
static void done_cancels_itself(evl_loop *loop, int status, void *data) {
    touch(data);
    CHECK_EQ(status, 0);
    REENTER(loop);
    /* Header: -EBUSY if it is running or finished. Its done is running. */
    CHECK_EQ(evl_cancel_work(loop, own_work), -EBUSY);
    FREED((tok *)data, 0); /* free_data runs after done */
}

static void test_stale_ids(void) {
    evl_loop *loop = new_loop();
    int fds[2];
    CHECK_EQ(pipe(fds), 0);

    /* Timers: cleared, already run, never existed, of another kind. */
    tok *t1 = tk("timer-cleared");
    evl_timer_id id1 = 0;
    CHECK_EQ(evl_set_timeout(loop, 1000, tcb, t1, tfree, &id1), 0);
    CHECK(id1 != 0);
    CHECK_EQ(evl_clear_timer(loop, id1), 1);
    FREED(t1, 1); /* cleared: free_data at once */
    CHECK_EQ(evl_clear_timer(loop, id1), 0);
    CHECK_EQ(evl_timer_set_ref(loop, id1, 0), -ENOENT);
    CHECK_EQ(evl_timer_set_ref(loop, id1, 1), -ENOENT);
    tok *t2 = tk("timer-ran");
    evl_timer_id id2 = 0;
    CHECK_EQ(evl_set_timeout(loop, 0, tcb, t2, tfree, &id2), 0);
    CHECK(id2 != id1); /* ids are never reused */
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    CALLS(t2, 1);
    FREED(t2, 1);
    CHECK_EQ(evl_clear_timer(loop, id2), 0);
    CHECK_EQ(evl_timer_set_ref(loop, id2, 0), -ENOENT);
    CHECK_EQ(evl_clear_timer(loop, 0), 0);
    CHECK_EQ(evl_clear_timer(loop, UINT64_MAX), 0);
    CHECK_EQ(evl_timer_set_ref(loop, 0, 1), -ENOENT);
    CHECK_EQ(evl_timer_set_ref(loop, UINT64_MAX, 1), -ENOENT);

    /* fd watchers: stopped ids stay dead, and never touch a newer watcher of
     * the same fd. */
    tok *w1 = tk("io-stopped");
    evl_io_id io1 = 0, io2 = 0;
    CHECK_EQ(evl_io_start(loop, fds[0], EVL_READABLE, tio, w1, tfree, &io1), 0);
    CHECK_EQ(evl_io_stop(loop, io1), 0);
    FREED(w1, 1);
    CHECK_EQ(evl_io_stop(loop, io1), -ENOENT);
    CHECK_EQ(evl_io_modify(loop, io1, EVL_READABLE), -ENOENT);
    CHECK_EQ(evl_io_set_ref(loop, io1, 0), -ENOENT);
    tok *w2 = tk("io-successor");
    CHECK_EQ(evl_io_start(loop, fds[0], EVL_READABLE, tio, w2, tfree, &io2), 0);
    CHECK(io2 != io1);
    CHECK_EQ(evl_io_stop(loop, io1), -ENOENT);
    CHECK_EQ(evl_io_modify(loop, io1, 0), -ENOENT);
    CHECK_EQ(evl_is_alive(loop), 1); /* the successor is untouched */
    CHECK_EQ(evl_io_stop(loop, io2), 0);
    FREED(w2, 1);
    CHECK_EQ(evl_io_stop(loop, 0), -ENOENT);
    CHECK_EQ(evl_io_stop(loop, UINT64_MAX), -ENOENT);
    CHECK_EQ(evl_io_modify(loop, UINT64_MAX, EVL_WRITABLE), -ENOENT);
    CHECK_EQ(evl_io_set_ref(loop, UINT64_MAX, 1), -ENOENT);

    /* Signals. */
    tok *s1 = tk("signal-stopped");
    evl_signal_id sig1 = 0;
    CHECK_EQ(evl_signal_start(loop, SIGUSR2, tsignal, s1, tfree, &sig1), 0);
    CHECK_EQ(evl_signal_stop(loop, sig1), 0);
    FREED(s1, 1);
    CHECK_EQ(evl_signal_stop(loop, sig1), -ENOENT);
    CHECK_EQ(evl_signal_set_ref(loop, sig1, 1), -ENOENT);
    CHECK_EQ(evl_signal_stop(loop, 0), -ENOENT);
    CHECK_EQ(evl_signal_set_ref(loop, UINT64_MAX, 0), -ENOENT);

    /* Work: finished ids are -EBUSY ("running or finished"), unknown -ENOENT. */
    tok *k1 = tk("work-done");
    CHECK_EQ(evl_queue_work(loop, twork, done_cancels_itself, k1, tfree, &own_work), 0);
    CHECK_EQ(evl_loop_free(loop), -EBUSY); /* pending work keeps it alive */
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    CALLS(k1, 1);
    FREED(k1, 1);
    CHECK_EQ(evl_cancel_work(loop, own_work), -EBUSY); /* header: finished -> -EBUSY */
    CHECK_EQ(evl_cancel_work(loop, 0), -ENOENT);
    CHECK_EQ(evl_cancel_work(loop, UINT64_MAX), -ENOENT);

    /* An id of one kind given to another kind's function is unknown there. */
    tok *x = tk("cross-kind");
    evl_timer_id xt = 0;
    evl_io_id xi = 0;
    CHECK_EQ(evl_set_timeout(loop, 100000, tcb, x, NULL, &xt), 0);
    CHECK_EQ(evl_io_start(loop, fds[1], 0, tio, x, NULL, &xi), 0);
    CHECK_EQ(evl_io_stop(loop, xt), -ENOENT);
    CHECK_EQ(evl_io_set_ref(loop, xt, 0), -ENOENT);
    CHECK_EQ(evl_signal_stop(loop, xt), -ENOENT);
    CHECK_EQ(evl_cancel_work(loop, xt), -ENOENT);
    CHECK_EQ(evl_clear_timer(loop, xi), 0);
    CHECK_EQ(evl_timer_set_ref(loop, xi, 0), -ENOENT);
    CHECK_EQ(evl_clear_timer(loop, xt), 1); /* both still alive after all that */
    CHECK_EQ(evl_io_stop(loop, xi), 0);
    CALLS(x, 0);

    FREE_LOOP(loop);
    close(fds[0]);
    close(fds[1]);
}

/* ==== 4. huge and out-of-range values ========================================= */

static int zero_interval_calls;
static evl_timer_id zero_interval;
static void zero_interval_cb(evl_loop *loop, void *data) {
    touch(data);
    if (++zero_interval_calls == 3)
        CHECK_EQ(evl_clear_timer(loop, zero_interval), 1);
}

static void test_huge_values(void) {
    evl_loop *loop = new_loop();
    int fds[2];
    CHECK_EQ(pipe(fds), 0);

    /* Timers "practically never": accepted, pending, keep the loop alive, and
     * clear normally (header silent on the range; libuv's uv_timer_start
     * clamps a deadline that overflows to UINT64_MAX and accepts it). */
    tok *h[4] = {tk("timeout-max"), tk("interval-max"), tk("timeout-ns-max"),
                 tk("interval-ns-max")};
    evl_timer_id hid[4] = {0, 0, 0, 0};
    CHECK_EQ(evl_set_timeout(loop, UINT64_MAX, tcb, h[0], tfree, &hid[0]), 0);
    CHECK_EQ(evl_set_interval(loop, UINT64_MAX, tcb, h[1], tfree, &hid[1]), 0);
    CHECK_EQ(evl_set_timeout_ns(loop, UINT64_MAX, tcb, h[2], tfree, &hid[2]), 0);
    CHECK_EQ(evl_set_interval_ns(loop, UINT64_MAX, tcb, h[3], tfree, &hid[3]), 0);
    CHECK_EQ(evl_is_alive(loop), 1);
    /* Rounded-up ms until the next timer, saturated at INT_MAX (libuv's
     * uv_backend_timeout clamps the same way; header silent). */
    CHECK_EQ(evl_backend_timeout(loop), INT_MAX);
    CHECK_EQ(evl_run(loop, EVL_RUN_NOWAIT), 1);
    CHECK_EQ(evl_run(loop, EVL_RUN_NOWAIT), 1);
    CHECK(evl_now_ms(loop) < 1000000);
    for (int i = 0; i < 4; i++) {
        CALLS(h[i], 0);
        CHECK_EQ(evl_timer_set_ref(loop, hid[i], 0), 0);
    }
    CHECK_EQ(evl_is_alive(loop), 0);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0); /* unref'd: returns at once */
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(evl_timer_set_ref(loop, hid[i], 1), 0);
        CHECK_EQ(evl_clear_timer(loop, hid[i]), 1);
        FREED(h[i], 1);
    }
    /* A zero interval runs once per pass (evloop's documented meaning; it
     * is never run twice in one pass). */
    tok *z = tk("interval-0");
    CHECK_EQ(evl_set_interval(loop, 0, zero_interval_cb, z, tfree, &zero_interval), 0);
    CHECK_EQ(evl_run(loop, EVL_RUN_NOWAIT), 1);
    CALLS(z, 1);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    CALLS(z, 3);
    FREED(z, 1);

    /* Run modes out of range. */
    const int modes[] = {3, -1, INT_MAX, INT_MIN};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
        CHECK_EQ(evl_run(loop, modes[i]), -EINVAL);

    /* fds: negative and huge are -EBADF; events outside READABLE|WRITABLE
     * are -EINVAL (HANGUP and ERROR are only reported, never asked for). */
    tok *bad = tk("io-bad-args");
    evl_io_id iid = 0;
    const int bad_fds[] = {-1, -2, INT_MIN, 1 << 30, INT_MAX};
    for (size_t i = 0; i < sizeof bad_fds / sizeof bad_fds[0]; i++) {
        CHECK_EQ(evl_io_start(loop, bad_fds[i], EVL_READABLE, tio, bad, tfree, &iid), -EBADF);
        CHECK_EQ(evl_io_start(loop, bad_fds[i], 0, tio, bad, tfree, &iid), -EBADF);
    }
    const int bad_events[] = {EVL_HANGUP, EVL_ERROR, EVL_READABLE | EVL_HANGUP, 16, -1,
                              INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof bad_events / sizeof bad_events[0]; i++)
        CHECK_EQ(evl_io_start(loop, fds[0], bad_events[i], tio, bad, tfree, &iid), -EINVAL);
    /* Not pollable: a directory, /dev/null (-EPERM, like a regular file). */
    int dir = open("/", O_RDONLY | O_DIRECTORY);
    CHECK_EQ(evl_io_start(loop, dir, EVL_READABLE, tio, bad, tfree, &iid), -EPERM);
    CHECK_EQ(evl_io_start(loop, dir, 0, tio, bad, tfree, &iid), -EPERM);
    close(dir);
    int devnull = open("/dev/null", O_RDONLY);
    CHECK_EQ(evl_io_start(loop, devnull, EVL_READABLE, tio, bad, tfree, &iid), -EPERM);
    close(devnull);
    /* The loop's own backend fd cannot watch itself: -EINVAL (epoll's answer;
     * header silent beyond listing -EINVAL). */
    CHECK_EQ(evl_io_start(loop, evl_backend_fd(loop), EVL_READABLE, tio, bad, tfree, &iid),
             -EINVAL);
    CHECK_EQ(iid, 0);
    FREED(bad, 0);
    evl_io_id good = 0;
    tok *g = tk("io-modify-bad");
    CHECK_EQ(evl_io_start(loop, fds[0], EVL_READABLE, tio, g, tfree, &good), 0);
    for (size_t i = 0; i < sizeof bad_events / sizeof bad_events[0]; i++)
        CHECK_EQ(evl_io_modify(loop, good, bad_events[i]), -EINVAL);
    CHECK_EQ(evl_io_set_ref(loop, good, 42), 0); /* any non-zero keeps alive */
    CHECK_EQ(evl_is_alive(loop), 1);
    CHECK_EQ(evl_io_set_ref(loop, good, 0), 0);
    CHECK_EQ(evl_is_alive(loop), 0);
    CHECK_EQ(evl_io_stop(loop, good), 0);
    FREED(g, 1);
    CALLS(g, 0);

    /* Signals: non-signals and the two that cannot be caught. */
    tok *sg = tk("signal-bad");
    evl_signal_id sid = 0;
    const int bad_sigs[] = {0, -1, 65, 1 << 30, INT_MAX, INT_MIN, SIGKILL, SIGSTOP};
    for (size_t i = 0; i < sizeof bad_sigs / sizeof bad_sigs[0]; i++)
        CHECK_EQ(evl_signal_start(loop, bad_sigs[i], tsignal, sg, tfree, &sid), -EINVAL);
    CHECK_EQ(sid, 0);
    FREED(sg, 0);

    /* TCP: ports outside 0..65535, negative backlogs (out of range, so
     * -EINVAL by the header's convention), addresses that are no IP. */
    tok *tl = tk("listen-bad");
    evl_server *srv = NULL;
    const int bad_ports[] = {-1, 65536, 70000, INT_MAX, INT_MIN};
    for (size_t i = 0; i < sizeof bad_ports / sizeof bad_ports[0]; i++) {
        CHECK_EQ(evl_tcp_listen(loop, "127.0.0.1", bad_ports[i], 16, tconn, tl, tfree, &srv),
                 -EINVAL);
        CHECK_EQ(evl_tcp_connect(loop, "127.0.0.1", bad_ports[i], tconnect, tl, tfree), -EINVAL);
    }
    CHECK_EQ(evl_tcp_listen(loop, "127.0.0.1", 0, -1, tconn, tl, tfree, &srv), -EINVAL);
    CHECK_EQ(evl_tcp_listen(loop, "127.0.0.1", 0, INT_MIN, tconn, tl, tfree, &srv), -EINVAL);
    static char long_ip[8192];
    memset(long_ip, '1', sizeof long_ip - 1);
    /* Not IP literals: names other than localhost are refused with -ENXIO
     * (never looked up: no DNS from a synchronous call); "" is -EINVAL. */
    CHECK_EQ(evl_tcp_listen(loop, "", 0, 16, tconn, tl, tfree, &srv), -EINVAL);
    CHECK_EQ(evl_tcp_connect(loop, "", 80, tconnect, tl, tfree), -EINVAL);
    const char *bad_ips[] = {" ", "127.0.0.1:80", "1.2.3.4.5", "256.0.0.1",
                             "::g", "127.0.0.1\n", "example.invalid", long_ip};
    for (size_t i = 0; i < sizeof bad_ips / sizeof bad_ips[0]; i++) {
        CHECK_EQ(evl_tcp_listen(loop, bad_ips[i], 0, 16, tconn, tl, tfree, &srv), -ENXIO);
        CHECK_EQ(evl_tcp_connect(loop, bad_ips[i], 80, tconnect, tl, tfree), -ENXIO);
    }
    /* "localhost" is the loopback address. */
    evl_server *local = NULL;
    tok *lt = tk("listen-localhost");
    CHECK_EQ(evl_tcp_listen(loop, "LocalHost", 0, 16, tconn, lt, tfree, &local), 0);
    CHECK(evl_server_port(loop, local) > 0);
    CHECK_EQ(evl_server_close(loop, local), 0);
    FREED(lt, 1);
    /* An address this host does not have; then a port already in use. */
    CHECK_EQ(evl_tcp_listen(loop, "192.0.2.1", 0, 16, tconn, tl, tfree, &srv), -EADDRNOTAVAIL);
    CHECK(srv == NULL);
    FREED(tl, 0);
    /* A huge backlog is clamped by the kernel (libuv passes it to listen()
     * as is; header silent). */
    tok *big = tk("listen-backlog-max");
    srv = NULL;
    CHECK_EQ(evl_tcp_listen(loop, "127.0.0.1", 0, INT_MAX, tconn, big, tfree, &srv), 0);
    int port = evl_server_port(loop, srv);
    CHECK(port > 0 && port <= 65535);
    evl_server *clash = NULL;
    CHECK_EQ(evl_tcp_listen(loop, "127.0.0.1", port, 16, tconn, tl, tfree, &clash), -EADDRINUSE);
    CHECK(clash == NULL);
    FREED(tl, 0);
    CHECK_EQ(evl_server_close(loop, srv), 0);
    FREED(big, 1);
    CALLS(big, 0);

    /* A pool size that is no number is ignored (default 4 threads). */
    const char *sizes[] = {"0", "-3", "abc", "99999999999999999999999", "1025", ""};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        setenv("EVLOOP_THREADPOOL_SIZE", sizes[i], 1);
        evl_loop *l2 = new_loop();
        tok *w = tk("work-odd-pool");
        CHECK_EQ(evl_queue_work(l2, twork, tstatus, w, tfree, NULL), 0);
        CHECK_EQ(evl_run(l2, EVL_RUN_DEFAULT), 0);
        CALLS(w, 1);
        FREED(w, 1);
        FREE_LOOP(l2);
    }
    unsetenv("EVLOOP_THREADPOOL_SIZE");

    FREE_LOOP(loop);
    close(fds[0]);
    close(fds[1]);
}

/* ==== 5. an fd already watched: -EEXIST at once, whatever its state ========= */

static int hangups;
static void on_hangup(evl_loop *loop, int fd, int events, void *data) {
    (void)loop, (void)fd;
    touch(data);
    CHECK(events & EVL_HANGUP);
    hangups++;
}

static void test_io_exists(void) {
    evl_loop *loop = new_loop();
    int fds[2];
    CHECK_EQ(pipe(fds), 0);
    tok *a = tk("io-paused");
    tok *dup0 = tk("io-dup-paused-0"), *dup1 = tk("io-dup-paused-readable");
    evl_io_id first = 0, extra = 0;

    /* Registered paused (events 0): a second start must fail at once. (If
     * it wrongly succeeds, the extra watcher is stopped again, so its
     * free_data count shows the call was accepted.) */
    CHECK_EQ(evl_io_start(loop, fds[0], 0, tio, a, tfree, &first), 0);
    extra = 0;
    CHECK_EQ(evl_io_start(loop, fds[0], 0, tio, dup0, tfree, &extra), -EEXIST);
    if (extra)
        evl_io_stop(loop, extra);
    extra = 0;
    CHECK_EQ(evl_io_start(loop, fds[0], EVL_READABLE, tio, dup1, tfree, &extra), -EEXIST);
    if (extra)
        evl_io_stop(loop, extra);
    FREED(dup0, 0);
    FREED(dup1, 0);
    /* Paused after the fact, with evl_io_modify(.., 0). */
    CHECK_EQ(evl_io_modify(loop, first, EVL_READABLE), 0);
    CHECK_EQ(evl_io_modify(loop, first, 0), 0);
    tok *dup2 = tk("io-dup-modified-to-0");
    extra = 0;
    CHECK_EQ(evl_io_start(loop, fds[0], EVL_READABLE, tio, dup2, tfree, &extra), -EEXIST);
    if (extra)
        evl_io_stop(loop, extra);
    FREED(dup2, 0);
    /* Active: -EEXIST with either events. */
    CHECK_EQ(evl_io_modify(loop, first, EVL_READABLE), 0);
    tok *dup3 = tk("io-dup-active");
    extra = 0;
    CHECK_EQ(evl_io_start(loop, fds[0], EVL_READABLE, tio, dup3, tfree, &extra), -EEXIST);
    if (extra)
        evl_io_stop(loop, extra);
    extra = 0;
    CHECK_EQ(evl_io_start(loop, fds[0], 0, tio, dup3, tfree, &extra), -EEXIST);
    if (extra)
        evl_io_stop(loop, extra);
    FREED(dup3, 0);
    CHECK_EQ(evl_io_stop(loop, first), 0);
    FREED(a, 1);
    CALLS(a, 0);

    /* Parked after a hang-up (reported once, then no more polling): the
     * watcher still exists, so the fd is still watched. */
    tok *hu = tk("io-hangup");
    evl_io_id hid = 0;
    CHECK_EQ(evl_io_start(loop, fds[0], EVL_READABLE, on_hangup, hu, tfree, &hid), 0);
    close(fds[1]);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0); /* ends: the parked watcher lets go */
    CALLS(hu, 1);
    tok *dup4 = tk("io-dup-parked");
    extra = 0;
    CHECK_EQ(evl_io_start(loop, fds[0], EVL_READABLE, tio, dup4, tfree, &extra), -EEXIST);
    if (extra)
        evl_io_stop(loop, extra);
    FREED(dup4, 0);
    CHECK_EQ(evl_io_modify(loop, hid, EVL_READABLE), 0); /* re-armed: reported again */
    CHECK_EQ(evl_run(loop, EVL_RUN_ONCE), 0);
    CALLS(hu, 2);
    CHECK_EQ(evl_io_stop(loop, hid), 0);
    FREED(hu, 1);

    /* The same fd in two loops is fine (one epoll each, as libuv). */
    int p2[2];
    CHECK_EQ(pipe(p2), 0);
    evl_loop *other = new_loop();
    tok *in1 = tk("io-loop1"), *in2 = tk("io-loop2");
    evl_io_id i1 = 0, i2 = 0;
    CHECK_EQ(evl_io_start(loop, p2[0], EVL_READABLE, tio, in1, tfree, &i1), 0);
    CHECK_EQ(evl_io_start(other, p2[0], EVL_READABLE, tio, in2, tfree, &i2), 0);
    CHECK_EQ(evl_io_stop(other, i2), 0);
    CHECK_EQ(evl_io_stop(loop, i1), 0);
    FREED(in1, 1);
    FREED(in2, 1);
    FREE_LOOP(other);
    FREE_LOOP(loop);
    close(fds[0]);
    close(p2[0]);
    close(p2[1]);
}

/* ==== 6. calls from inside callbacks ========================================== */

static evl_timer_id self_interval, self_timeout;
static tok *self_interval_tok;
static evl_loop *cb_loop;

/* free_data of an interval cleared in its own callback: runs inside evl_run,
 * after the callback returned. */
static void interval_free_reenters(void *data) {
    tok *t = data;
    CHECK_EQ(t->calls, 1); /* after the callback, never during */
    t->freed++;
    REENTER(cb_loop);
}

static void interval_clears_itself(evl_loop *loop, void *data) {
    touch(data);
    REENTER(loop);
    CHECK_EQ(evl_clear_timer(loop, self_interval), 1);
    FREED(self_interval_tok, 0); /* "free_data runs after it" */
    CHECK_EQ(evl_clear_timer(loop, self_interval), 0);
    CHECK_EQ(evl_timer_set_ref(loop, self_interval, 0), -ENOENT);
}

static void timeout_clears_itself(evl_loop *loop, void *data) {
    touch(data);
    REENTER(loop);
    /* A timeout whose callback runs is no longer pending (header: 0 "already
     * ran"; libuv: the timer is inactive during its callback). */
    CHECK_EQ(evl_clear_timer(loop, self_timeout), 0);
    CHECK_EQ(evl_timer_set_ref(loop, self_timeout, 0), -ENOENT);
    FREED((tok *)data, 0);
}

static evl_io_id self_io;
static evl_io_id pair_io[2];
static tok *pair_tok[2];
static void io_stops_itself(evl_loop *loop, int fd, int events, void *data) {
    (void)fd;
    touch(data);
    CHECK_EQ(events, EVL_READABLE);
    REENTER(loop);
    CHECK_EQ(evl_io_stop(loop, self_io), 0);
    FREED((tok *)data, 0); /* inside its own callback: after it returns */
    CHECK_EQ(evl_io_stop(loop, self_io), -ENOENT);
    CHECK_EQ(evl_io_modify(loop, self_io, EVL_READABLE), -ENOENT);
    CHECK_EQ(evl_io_set_ref(loop, self_io, 1), -ENOENT);
    /* The data was not read: a level-triggered watcher would fire again. */
}

/* Two watchers ready in the same pass; the first to run stops both. */
static void io_stops_both(evl_loop *loop, int fd, int events, void *data) {
    (void)fd, (void)events;
    touch(data);
    int me = data == pair_tok[0] ? 0 : 1;
    CHECK_EQ(evl_io_stop(loop, pair_io[me]), 0);
    CHECK_EQ(evl_io_stop(loop, pair_io[1 - me]), 0);
    FREED(pair_tok[1 - me], 1); /* not its callback: at once */
    FREED(pair_tok[me], 0);
}

static evl_handle *self_handle;
static void post_frees_handle(evl_loop *loop, void *data) {
    touch(data);
    REENTER(loop);
    evl_handle_free(self_handle);
    self_handle = NULL;
    evl_handle *h = evl_handle_new(loop);
    CHECK(h != NULL);
    CHECK_EQ(evl_handle_set_ref(h, 0), 0);
    evl_handle_free(h);
}

static evl_signal_id self_signal;
static void signal_stops_itself(evl_loop *loop, int signum, void *data) {
    touch(data);
    CHECK_EQ(signum, SIGUSR2);
    REENTER(loop);
    CHECK_EQ(evl_signal_stop(loop, self_signal), 0);
    FREED((tok *)data, 0);
    CHECK_EQ(evl_signal_stop(loop, self_signal), -ENOENT);
    CHECK_EQ(evl_signal_set_ref(loop, self_signal, 1), -ENOENT);
}

static evl_loop *idle_loop;
static void frees_other_loop(evl_loop *loop, void *data) {
    touch(data);
    REENTER(loop);
    CHECK_EQ(evl_loop_free(idle_loop), 0); /* another, idle loop: fine */
    idle_loop = NULL;
}

static void test_inside_callbacks(void) {
    evl_loop *loop = new_loop();
    cb_loop = loop;

    tok *iv = tk("interval-self-clear");
    self_interval_tok = iv;
    CHECK_EQ(evl_set_interval(loop, 1, interval_clears_itself, iv, interval_free_reenters,
                              &self_interval), 0);
    tok *to = tk("timeout-self-clear");
    CHECK_EQ(evl_set_timeout(loop, 1, timeout_clears_itself, to, tfree, &self_timeout), 0);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    CALLS(iv, 1);
    FREED(iv, 1);
    CALLS(to, 1);
    FREED(to, 1);

    int fds[2], fds2[2];
    CHECK_EQ(pipe(fds), 0);
    CHECK_EQ(pipe(fds2), 0);
    tok *io = tk("io-self-stop");
    CHECK_EQ(evl_io_start(loop, fds[0], EVL_READABLE, io_stops_itself, io, tfree, &self_io), 0);
    CHECK_EQ(write(fds[1], "x", 1), 1);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    CALLS(io, 1);
    FREED(io, 1);

    pair_tok[0] = tk("io-pair-0");
    pair_tok[1] = tk("io-pair-1");
    CHECK_EQ(evl_io_start(loop, fds[0], EVL_READABLE, io_stops_both, pair_tok[0], tfree,
                          &pair_io[0]), 0);
    CHECK_EQ(evl_io_start(loop, fds2[0], EVL_READABLE, io_stops_both, pair_tok[1], tfree,
                          &pair_io[1]), 0);
    CHECK_EQ(write(fds2[1], "y", 1), 1); /* both readable now */
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    CHECK_EQ(pair_tok[0]->calls + pair_tok[1]->calls, 1);
    FREED(pair_tok[0], 1);
    FREED(pair_tok[1], 1);

    tok *ht = tk("post-frees-handle");
    self_handle = evl_handle_new(loop);
    CHECK(self_handle != NULL);
    CHECK_EQ(evl_handle_set_ref(self_handle, 42), 0);
    CHECK_EQ(evl_handle_post(self_handle, post_frees_handle, ht, tfree), 0);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0); /* ends once the handle is gone */
    CALLS(ht, 1);
    FREED(ht, 1);

    tok *sg = tk("signal-self-stop");
    CHECK_EQ(evl_signal_start(loop, SIGUSR2, signal_stops_itself, sg, tfree, &self_signal), 0);
    CHECK_EQ(evl_signal_set_ref(loop, self_signal, 1), 0);
    raise(SIGUSR2);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    CALLS(sg, 1);
    FREED(sg, 1);

    idle_loop = new_loop();
    tok *fo = tk("frees-other-loop");
    CHECK_EQ(evl_call_soon(loop, frees_other_loop, fo, tfree), 0);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    CALLS(fo, 1);
    FREED(fo, 1);
    CHECK(idle_loop == NULL);

    FREE_LOOP(loop);
    close(fds[0]);
    close(fds[1]);
    close(fds2[0]);
    close(fds2[1]);
}

/* ==== 7. nested loops: A's callback runs B, whose callback calls into A ===== */

static evl_loop *loop_a, *loop_b;
static tok *nested_later, *nested_timer, *b_tok;

static void b_calls_into_a(evl_loop *loop, void *data) {
    touch(data);
    CHECK(loop == loop_b);
    REENTER(loop_b);
    REENTER(loop_a); /* A is running too (further down the stack) */
    CHECK_EQ(evl_call_soon(loop_a, tcb, nested_later, tfree), 0);
    CHECK_EQ(evl_set_timeout(loop_a, 0, tcb, nested_timer, tfree, NULL), 0);
    CHECK_EQ(evl_is_alive(loop_a), 1);
    CHECK(evl_backend_fd(loop_a) >= 0);
    CHECK(evl_backend_fd(loop_a) != evl_backend_fd(loop_b));
}

static void a_runs_b(evl_loop *loop, void *data) {
    touch(data);
    CHECK(loop == loop_a);
    CHECK_EQ(evl_call_soon(loop_b, b_calls_into_a, b_tok, tfree), 0);
    CHECK_EQ(evl_run(loop_b, EVL_RUN_DEFAULT), 0);
    CALLS(b_tok, 1);
    FREED(b_tok, 1);
    REENTER(loop_a); /* back in A's callback: A is still the running loop */
    CHECK_EQ(evl_loop_free(loop_b), 0);
    loop_b = NULL;
    CALLS(nested_later, 0); /* queued on A: runs on a later pass of A */
}

static void test_nested_loops(void) {
    loop_a = new_loop();
    loop_b = new_loop();
    tok *a = tk("nested-a");
    b_tok = tk("nested-b");
    nested_later = tk("nested-call-soon-on-a");
    nested_timer = tk("nested-timeout-on-a");
    CHECK_EQ(evl_call_soon(loop_a, a_runs_b, a, tfree), 0);
    CHECK_EQ(evl_run(loop_a, EVL_RUN_DEFAULT), 0);
    CALLS(a, 1);
    FREED(a, 1);
    CALLS(nested_later, 1);
    FREED(nested_later, 1);
    CALLS(nested_timer, 1);
    FREED(nested_timer, 1);
    CHECK(loop_b == NULL);
    FREE_LOOP(loop_a);
}

/* ==== 8. blocking work from inside callbacks ================================ */

static void done_reenters(evl_loop *loop, int status, void *data) {
    touch(data);
    CHECK_EQ(status, 0);
    REENTER(loop);
    /* More work from a done callback. */
    CHECK_EQ(evl_queue_work(loop, twork, tstatus, ((tok *)data) + 1, tfree, NULL), 0);
}

static void test_work(void) {
    evl_loop *loop = new_loop();
    tok *d = tk("work-reenter");
    tok *d2 = tk("work-from-done"); /* d + 1 */
    CHECK(d2 == d + 1);
    CHECK_EQ(evl_queue_work(loop, twork, done_reenters, d, tfree, NULL), 0);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    CALLS(d, 1);
    FREED(d, 1);
    CALLS(d2, 1);
    FREED(d2, 1);
    FREE_LOOP(loop);
}

/* ==== 8b. Gather: hostile counts, ids and statuses ============================ */

static int gather_status_seen;
static void gather_final(evl_loop *loop, int status, void *data) {
    (void)loop;
    touch(data);
    gather_status_seen = status;
}

static void test_gather(void) {
    evl_loop *loop = new_loop();
    evl_gather_id id = 0;
    tok *bad = tk("gather-refused");
    /* n == 0, NULL done, NULL loop: -EINVAL and free_data never called. */
    CHECK_EQ(evl_gather_new(loop, 0, gather_final, bad, tfree, &id), -EINVAL);
    CHECK_EQ(evl_gather_new(loop, 2, NULL, bad, tfree, &id), -EINVAL);
    CHECK_EQ(evl_gather_new(NULL, 2, gather_final, bad, tfree, &id), -EINVAL);
    FREED(bad, 0);
    /* Unknown ids, on a loop with no gather yet and after. */
    CHECK_EQ(evl_gather_done(loop, 0, 0), -ENOENT);
    CHECK_EQ(evl_gather_done(loop, UINT64_MAX, 0), -ENOENT);
    CHECK_EQ(evl_gather_done(NULL, 1, 0), -EINVAL);
    /* out may be NULL. */
    tok *unnamed = tk("gather-unnamed");
    CHECK_EQ(evl_gather_new(loop, 1, gather_final, unnamed, tfree, NULL), 0);
    tok *t = tk("gather");
    CHECK_EQ(evl_gather_new(loop, 2, gather_final, t, tfree, &id), 0);
    CHECK_EQ(evl_gather_done(loop, id, 5), -EINVAL); /* positive: not a status */
    CHECK_EQ(evl_gather_done(loop, id + 1, 0), -ENOENT);
    CHECK_EQ(evl_gather_done(loop, id, 0), 0);
    CHECK_EQ(evl_gather_done(loop, id, -ECONNRESET), 0);
    CALLS(t, 0); /* through the loop, never inside evl_gather_done */
    /* Done called too often: the id is gone after its n dones. */
    CHECK_EQ(evl_gather_done(loop, id, 0), -ENOENT);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    CALLS(t, 1);
    FREED(t, 1);
    CHECK_EQ(gather_status_seen, -ECONNRESET);
    /* A new gather may take the old one's slot: the stale id misses it. */
    tok *t2 = tk("gather-2");
    evl_gather_id id2 = 0;
    CHECK_EQ(evl_gather_new(loop, 1, gather_final, t2, tfree, &id2), 0);
    CHECK(id2 != id);
    CHECK_EQ(evl_gather_done(loop, id, 0), -ENOENT);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    CALLS(t2, 0);
    /* Freed with gathers pending: free_data once each, no callback. */
    FREE_LOOP(loop);
    CALLS(t2, 0);
    FREED(t2, 1);
    CALLS(unnamed, 0);
    FREED(unnamed, 1);
}

/* ==== 9. TCP: server closed inside its connection callback ================== */

static evl_server *closing_server;
static int conns_after_close;
static void conn_closes_server(evl_loop *loop, evl_server *srv, int status, evl_stream *client,
                               void *data) {
    tok *t = data;
    touch(t);
    if (t->calls > 1) {
        /* The server was closed by the first call: nothing may follow, least
         * of all a callback carrying the freed evl_server *. */
        conns_after_close++;
    } else {
        CHECK(srv == closing_server);
        CHECK_EQ(status, 0);
        CHECK(client != NULL);
        REENTER(loop);
        CHECK_EQ(evl_server_close(loop, srv), 0);
        /* Stale now. Header silent; streams and servers are checked against
         * the loop's table, an unknown pointer is -EINVAL (libuv has no
         * answer: a second uv_close aborts). */
        CHECK_EQ(evl_server_close(loop, srv), -EINVAL);
        CHECK_EQ(evl_server_port(loop, srv), -EINVAL);
    }
    if (client)
        CHECK_EQ(evl_stream_close(loop, client, NULL, NULL, NULL), 0); /* cb NULL */
}

static void test_server_close_in_callback(void) {
    evl_loop *loop = new_loop();
    tok *t = tk("server-closed-in-callback");
    closing_server = listen_any(loop, conn_closes_server, t, tfree);
    int port = evl_server_port(loop, closing_server);
    int peers[3];
    for (int i = 0; i < 3; i++)
        peers[i] = peer_connect(port, 0); /* all three wait in the backlog */
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    CALLS(t, 1);
    CHECK_EQ(conns_after_close, 0);
    FREED(t, 1);
    CHECK_EQ(t->late, 0);
    CHECK_EQ(evl_server_close(loop, closing_server), -EINVAL);
    FREE_LOOP(loop);
    for (int i = 0; i < 3; i++)
        close(peers[i]);
}

/* ==== 9b. TCP: a refused connect calls back once, on a later pass ========== */

static void connect_refused(evl_loop *loop, int status, evl_stream *s, void *data) {
    touch(data);
    CHECK_EQ(status, -ECONNREFUSED);
    CHECK(s == NULL);
    REENTER(loop);
    FREED((tok *)data, 0); /* free_data after the callback */
}

static void test_connect_refused(void) {
    evl_loop *loop = new_loop();
    /* A port that was just free: listen on 0, note it, close. */
    tok *lt = tk("listener-for-port");
    evl_server *srv = listen_any(loop, tconn, lt, tfree);
    int port = evl_server_port(loop, srv);
    CHECK_EQ(evl_server_close(loop, srv), 0);
    FREED(lt, 1);
    tok *c = tk("connect-refused");
    CHECK_EQ(evl_tcp_connect(loop, "127.0.0.1", port, connect_refused, c, tfree), 0);
    CALLS(c, 0); /* never inside the call */
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    CALLS(c, 1);
    FREED(c, 1);
    FREE_LOOP(loop);
}

/* ==== 10. TCP: stream closed inside its read callback, twice ================ */

static evl_stream *rstream;
static tok *close_tok;
static void close_cb(evl_loop *loop, void *data) {
    touch(data);
    REENTER(loop);
    /* Still the same stream until this returns; already closed. */
    CHECK_EQ(evl_stream_close(loop, rstream, NULL, NULL, NULL), -ENOTCONN);
}

static void read_closes(evl_loop *loop, evl_stream *s, ssize_t n, const char *buf, void *data) {
    tok *t = data;
    touch(t);
    if (t->calls > 1)
        return; /* counted: no read callback may follow the close */
    CHECK(s == rstream);
    CHECK_EQ(n, 5);
    CHECK(buf != NULL && memcmp(buf, "hello", 5) == 0);
    REENTER(loop);
    tok *no = tk("after-close-calls");
    CHECK_EQ(evl_stream_close(loop, s, close_cb, close_tok, tfree), 0);
    CHECK_EQ(evl_stream_close(loop, s, close_cb, no, tfree), -ENOTCONN);
    CHECK_EQ(evl_stream_write(loop, s, "x", 1, tstatus, no, tfree), -ENOTCONN);
    CHECK_EQ(evl_stream_shutdown(loop, s, tstatus, no, tfree), -ENOTCONN);
    /* Header silent; evloop's "closed" errno (libuv: UV_EINVAL for a closing
     * handle). */
    CHECK_EQ(evl_stream_read_start(loop, s, tread, no, tfree), -ENOTCONN);
    CHECK_EQ(evl_stream_read_stop(loop, s), 0); /* as uv_read_stop: idempotent */
    CHECK_EQ(evl_stream_write_queue_size(loop, s), 0);
    FREED(no, 0);
    FREED(t, 0); /* its own callback is running */
    FREED(close_tok, 0);
}

static void conn_reads(evl_loop *loop, evl_server *srv, int status, evl_stream *client,
                       void *data) {
    touch(data);
    CHECK_EQ(status, 0);
    rstream = client;
    CHECK_EQ(evl_stream_read_start(loop, client, read_closes, ((tok *)data) + 1, tfree), 0);
    CHECK_EQ(evl_server_close(loop, srv), 0);
}

static void test_stream_close_in_read(void) {
    evl_loop *loop = new_loop();
    tok *lt = tk("listener-read-close");
    tok *rt = tk("reader-closes"); /* lt + 1 */
    close_tok = tk("close-cb");
    evl_server *srv = listen_any(loop, conn_reads, lt, tfree);
    int peer = peer_connect(evl_server_port(loop, srv), 0);
    CHECK_EQ(write(peer, "hello", 5), 5);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    CALLS(lt, 1);
    FREED(lt, 1);
    CALLS(rt, 1);
    FREED(rt, 1);
    CALLS(close_tok, 1);
    FREED(close_tok, 1);
    /* After the close callback the pointer is stale: checked, -EINVAL. */
    tok *no = tk("stale-stream-calls");
    CHECK_EQ(evl_stream_write_queue_size(loop, rstream), -EINVAL);
    CHECK_EQ(evl_stream_close(loop, rstream, tcb, no, tfree), -EINVAL);
    CHECK_EQ(evl_stream_write(loop, rstream, "x", 1, tstatus, no, tfree), -EINVAL);
    CHECK_EQ(evl_stream_read_start(loop, rstream, tread, no, tfree), -EINVAL);
    CHECK_EQ(evl_stream_read_stop(loop, rstream), -EINVAL);
    CHECK_EQ(evl_stream_shutdown(loop, rstream, tstatus, no, tfree), -EINVAL);
    FREED(no, 0);
    char buf[8];
    CHECK_EQ(read(peer, buf, sizeof buf), 0); /* the peer sees the close */
    close(peer);
    FREE_LOOP(loop);
}

/* ==== 11. TCP: close with writes queued ===================================== */

static char order[16];
static void note_order(char c) {
    size_t n = strlen(order);
    if (n + 1 < sizeof order) {
        order[n] = c;
        order[n + 1] = 0;
    }
}
static void ordered_status(evl_loop *loop, int status, void *data) {
    tok *t = data;
    touch(t);
    CHECK_EQ(status, -ECANCELED);
    REENTER(loop);
    note_order(t->name[0]);
}
static void ordered_close(evl_loop *loop, void *data) {
    touch(data);
    REENTER(loop);
    note_order('C');
}

static void conn_writes_then_closes(evl_loop *loop, evl_server *srv, int status,
                                    evl_stream *client, void *data) {
    tok *t = data;
    touch(t);
    CHECK_EQ(status, 0);
    size_t big = 32u << 20;
    char *buf = calloc(1, big);
    /* Above the high water mark: 0 (the peer reads nothing). */
    CHECK_EQ(evl_stream_write(loop, client, buf, big, ordered_status, t + 1, tfree), 0);
    free(buf); /* copied */
    CHECK(evl_stream_write_queue_size(loop, client) > 64 * 1024);
    CHECK_EQ(evl_stream_write(loop, client, "tail", 4, ordered_status, t + 2, tfree), 0);
    CHECK_EQ(evl_stream_write(loop, client, NULL, 0, ordered_status, t + 3, tfree), 0);
    /* Shutdown waits for the queue; closing first cancels it too. */
    CHECK_EQ(evl_stream_shutdown(loop, client, ordered_status, t + 4, tfree), 0);
    tok *no = tk("after-shutdown-calls");
    CHECK_EQ(evl_stream_write(loop, client, "late", 4, ordered_status, no, tfree), -EPIPE);
    /* Header silent on a second shutdown; it names -EPIPE for "after
     * shutdown" (libuv's uv_shutdown says UV_ENOTCONN). */
    CHECK_EQ(evl_stream_shutdown(loop, client, ordered_status, no, tfree), -EPIPE);
    FREED(no, 0);
    CHECK_EQ(evl_stream_close(loop, client, ordered_close, t + 5, tfree), 0);
    CHECK_EQ(evl_stream_write_queue_size(loop, client), 0);
    CHECK_EQ(evl_server_close(loop, srv), 0);
}

static void test_close_with_queued_writes(void) {
    evl_loop *loop = new_loop();
    tok *lt = tk("listener-queued");
    tk("1"); /* lt + 1 .. lt + 5 */
    tk("2");
    tk("3");
    tk("S");
    tk("C");
    order[0] = 0;
    evl_server *srv = listen_any(loop, conn_writes_then_closes, lt, tfree);
    int peer = peer_connect(evl_server_port(loop, srv), 4096);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    CHECK(strcmp(order, "123SC") == 0);
    for (int i = 0; i <= 5; i++) {
        CALLS(lt + i, 1);
        FREED(lt + i, 1);
    }
    close(peer);
    FREE_LOOP(loop);
}

/* ==== 12. free_data that calls back into evloop ============================= */

typedef struct {
    tok t;
    evl_loop *loop;
    evl_stream *stream;
    int rc;
} reent;

/* free_data of a read callback: writes to its own stream. A replaced or
 * stopped reader's stream is as usable as ever; a closed one is -ENOTCONN.
 * Never -ENOTRECOVERABLE (an internal bug). */
static void free_writes(void *data) {
    reent *r = data;
    r->t.freed++;
    r->rc = evl_stream_write(r->loop, r->stream, "z", 1, NULL, NULL, NULL);
}

static reent reader[3];
static void conn_reader_free_writes(evl_loop *loop, evl_server *srv, int status,
                                    evl_stream *client, void *data) {
    touch(data);
    CHECK_EQ(status, 0);
    for (int i = 0; i < 3; i++) {
        reader[i].loop = loop;
        reader[i].stream = client;
        reader[i].rc = 99;
        reader[i].t.name = i == 0 ? "reader-replaced" : i == 1 ? "reader-stopped" : "reader-closed";
    }
    CHECK_EQ(evl_stream_read_start(loop, client, tread, &reader[0], free_writes), 0);
    CHECK_EQ(evl_stream_read_start(loop, client, tread, &reader[1], free_writes), 0);
    FREED(&reader[0].t, 1); /* replaced: free_data runs */
    CHECK_EQ(reader[0].rc, 1);
    CHECK_EQ(evl_stream_read_stop(loop, client), 0);
    FREED(&reader[1].t, 1);
    CHECK_EQ(reader[1].rc, 1);
    CHECK_EQ(evl_stream_read_start(loop, client, tread, &reader[2], free_writes), 0);
    CHECK_EQ(evl_stream_close(loop, client, NULL, NULL, NULL), 0);
    CHECK_EQ(evl_server_close(loop, srv), 0);
}

static void test_free_data_reenters_stream(void) {
    evl_loop *loop = new_loop();
    memset(reader, 0, sizeof reader);
    tok *lt = tk("listener-free-writes");
    evl_server *srv = listen_any(loop, conn_reader_free_writes, lt, tfree);
    int peer = peer_connect(evl_server_port(loop, srv), 0);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    FREED(lt, 1);
    for (int i = 0; i < 3; i++) {
        FREED(&reader[i].t, 1);
        CALLS(&reader[i].t, 0);
    }
    CHECK_EQ(reader[2].rc, -ENOTCONN);
    char buf[8];
    CHECK_EQ(read(peer, buf, sizeof buf), 2); /* "zz" from the first two */
    close(peer);
    FREE_LOOP(loop);
}

/* free_data of an io watcher or timer: runs inside evl_io_stop /
 * evl_clear_timer, after the watcher / timer is gone. */
static evl_io_id reent_io;
static evl_timer_id reent_timer;
static evl_loop *reent_loop;
static tok *reent_followup;
static void free_io_reenters(void *data) {
    ((tok *)data)->freed++;
    CHECK_EQ(evl_io_stop(reent_loop, reent_io), -ENOENT);
    CHECK_EQ(evl_io_set_ref(reent_loop, reent_io, 0), -ENOENT);
}
static void free_timer_reenters(void *data) {
    ((tok *)data)->freed++;
    CHECK_EQ(evl_clear_timer(reent_loop, reent_timer), 0);
    CHECK_EQ(evl_set_timeout(reent_loop, 0, tcb, reent_followup, tfree, NULL), 0);
}

static void test_free_data_reenters_core(void) {
    evl_loop *loop = new_loop();
    reent_loop = loop;
    int fds[2];
    CHECK_EQ(pipe(fds), 0);
    tok *io = tk("io-free-reenters");
    CHECK_EQ(evl_io_start(loop, fds[0], EVL_READABLE, tio, io, free_io_reenters, &reent_io), 0);
    CHECK_EQ(evl_io_stop(loop, reent_io), 0);
    FREED(io, 1);
    tok *tm = tk("timer-free-reenters");
    reent_followup = tk("timer-set-by-free_data");
    CHECK_EQ(evl_set_timeout(loop, 1000, tcb, tm, free_timer_reenters, &reent_timer), 0);
    CHECK_EQ(evl_clear_timer(loop, reent_timer), 1);
    FREED(tm, 1);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    CALLS(reent_followup, 1);
    FREED(reent_followup, 1);
    FREE_LOOP(loop);
    close(fds[0]);
    close(fds[1]);
}

/* free_data that re-arms a timer on its loop, where evloop drops the data
 * itself: an interval cleared in its own callback (dropped by evl_run after
 * the callback) and a timer dropped by evl_loop_free. The first re-arms (the
 * new timer runs in the same evl_run), the second gets -EINVAL (the loop is
 * gone); neither may reach evloop in the middle of its own work. */
static evl_timer_id rearm_interval;
static int rearm_rc[2] = {99, 99};
static tok *rearmed_tok;
static void free_rearms(void *data) {
    tok *t = data;
    t->freed++;
    int which = strcmp(t->name, "interval-free-rearms") == 0 ? 0 : 1;
    rearm_rc[which] = evl_set_timeout(reent_loop, 0, tcb, rearmed_tok, tfree, NULL);
}
static void interval_clears_itself_once(evl_loop *loop, void *data) {
    touch(data);
    CHECK_EQ(evl_clear_timer(loop, rearm_interval), 1);
    FREED((tok *)data, 0);
}

static void test_free_data_rearms(void) {
    evl_loop *loop = new_loop();
    reent_loop = loop;
    tok *iv = tk("interval-free-rearms");
    rearmed_tok = tk("timer-rearmed-by-free_data");
    CHECK_EQ(evl_set_interval(loop, 1, interval_clears_itself_once, iv, free_rearms, &rearm_interval), 0);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    CALLS(iv, 1);
    FREED(iv, 1);
    CHECK_EQ(rearm_rc[0], 0);
    CALLS(rearmed_tok, 1); /* ran in the same evl_run */
    FREED(rearmed_tok, 1);
    tok *late = tk("timer-free-rearms-on-freed-loop");
    evl_timer_id id = 0;
    CHECK_EQ(evl_set_timeout(loop, 60000, tcb, late, free_rearms, &id), 0);
    CHECK_EQ(evl_timer_set_ref(loop, id, 0), 0);
    CHECK_EQ(evl_loop_free(loop), 0);
    FREED(late, 1);
    CALLS(late, 0);
    CHECK_EQ(rearm_rc[1], -EINVAL);
}

/* ==== 13. evl_loop_free drops everything exactly once ======================= */

static evl_handle *drop_handle;
static int drop_post_rc = 99;
static tok *drop_post_tok;
/* free_data run by evl_loop_free: posting to the freed loop is -ESHUTDOWN
 * ("once the loop was freed"), and that post's free_data is not called. */
static void free_posts_to_dying_loop(void *data) {
    ((tok *)data)->freed++;
    drop_post_rc = evl_handle_post(drop_handle, tcb, drop_post_tok, tfree);
}

static int open_fds(void) {
    int n = 0;
    for (int fd = 0; fd < 4096; fd++)
        if (fcntl(fd, F_GETFD) != -1)
            n++;
    return n;
}

static void test_loop_free_drops(void) {
    int fds[2];
    CHECK_EQ(pipe(fds), 0);
    int fds_before = open_fds();
    evl_loop *loop = new_loop();
    tok *t[5] = {tk("drop-timeout"), tk("drop-interval"), tk("drop-io"), tk("drop-signal"),
                 tk("drop-timeout-posts")};
    evl_timer_id a = 0, b = 0, e = 0;
    evl_io_id c = 0;
    CHECK_EQ(evl_set_timeout(loop, 60000, tcb, t[0], tfree, &a), 0);
    CHECK_EQ(evl_set_interval(loop, 1, tcb, t[1], tfree, &b), 0);
    CHECK_EQ(evl_io_start(loop, fds[1], EVL_WRITABLE, tio, t[2], tfree, &c), 0);
    CHECK_EQ(evl_signal_start(loop, SIGUSR2, tsignal, t[3], tfree, NULL), 0);
    CHECK_EQ(evl_set_timeout(loop, 60000, tcb, t[4], free_posts_to_dying_loop, &e), 0);
    drop_handle = evl_handle_new(loop);
    drop_post_tok = tk("post-to-dying-loop");
    CHECK_EQ(evl_loop_free(loop), -EBUSY);
    CHECK_EQ(evl_timer_set_ref(loop, a, 0), 0);
    CHECK_EQ(evl_timer_set_ref(loop, b, 0), 0);
    CHECK_EQ(evl_timer_set_ref(loop, e, 0), 0);
    CHECK_EQ(evl_io_set_ref(loop, c, 0), 0);
    CHECK_EQ(evl_handle_set_ref(drop_handle, 0), 0);
    CHECK_EQ(evl_loop_free(loop), 0);
    for (int i = 0; i < 5; i++) {
        FREED(t[i], 1);
        CALLS(t[i], 0);
    }
    CHECK_EQ(drop_post_rc, -ESHUTDOWN);
    FREED(drop_post_tok, 0);

    CHECK_EQ(evl_handle_set_ref(drop_handle, 1), 0); /* the handle itself lives on */
    CHECK_EQ(evl_handle_post(drop_handle, tcb, drop_post_tok, tfree), -ESHUTDOWN);
    FREED(drop_post_tok, 0);
    evl_handle_free(drop_handle); /* the last user of the poller */
    /* Freeing the loop released every fd it made (poller, signal pipes). */
    CHECK_EQ(open_fds(), fds_before);
    close(fds[0]);
    close(fds[1]);
}

/* ==== 14. cases that may crash: each in a child process ===================== */

/* A length no buffer can have (> SSIZE_MAX) is detectable: -EINVAL, no crash
 * ("No function ever crashes on bad arguments it can detect"). */
static evl_stream *huge_stream;
static void conn_huge_write(evl_loop *loop, evl_server *srv, int status, evl_stream *client,
                            void *data) {
    touch(data);
    CHECK_EQ(status, 0);
    huge_stream = client;
    tok *w = tk("huge-write");
    static char byte = 'x';
    CHECK_EQ(evl_stream_write(loop, client, &byte, SIZE_MAX, tstatus, w, tfree), -EINVAL);
    CHECK_EQ(evl_stream_write(loop, client, &byte, (size_t)SSIZE_MAX + 1, tstatus, w, tfree),
             -EINVAL);
    FREED(w, 0);
    CHECK_EQ(evl_stream_close(loop, client, NULL, NULL, NULL), 0);
    CHECK_EQ(evl_server_close(loop, srv), 0);
}
static void child_huge_write(void) {
    evl_loop *loop = new_loop();
    tok *lt = tk("listener-huge-write");
    evl_server *srv = listen_any(loop, conn_huge_write, lt, tfree);
    int peer = peer_connect(evl_server_port(loop, srv), 0);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    CALLS(lt, 1);
    FREE_LOOP(loop);
    close(peer);
}

/* free_data of a replaced reader asks for its stream's queue size. */
static void free_asks_queue_size(void *data) {
    reent *r = data;
    r->t.freed++;
    r->rc = (int)evl_stream_write_queue_size(r->loop, r->stream);
}
static void conn_reader_free_queue_size(evl_loop *loop, evl_server *srv, int status,
                                        evl_stream *client, void *data) {
    touch(data);
    CHECK_EQ(status, 0);
    reader[0].loop = loop;
    reader[0].stream = client;
    reader[0].rc = 99;
    reader[0].t.name = "reader-free-queue-size";
    CHECK_EQ(evl_stream_read_start(loop, client, tread, &reader[0], free_asks_queue_size), 0);
    CHECK_EQ(evl_stream_read_stop(loop, client), 0);
    FREED(&reader[0].t, 1);
    CHECK_EQ(reader[0].rc, 0);
    CHECK_EQ(evl_stream_close(loop, client, NULL, NULL, NULL), 0);
    CHECK_EQ(evl_server_close(loop, srv), 0);
}
static void child_free_data_queue_size(void) {
    evl_loop *loop = new_loop();
    memset(reader, 0, sizeof reader);
    tok *lt = tk("listener-free-queue-size");
    evl_server *srv = listen_any(loop, conn_reader_free_queue_size, lt, tfree);
    int peer = peer_connect(evl_server_port(loop, srv), 0);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    FREE_LOOP(loop);
    close(peer);
}

/* free_data run by evl_loop_free calls into the loop being freed. The header
 * is silent (libuv has no such path: uv_loop_close fails while handles are
 * open); the only safe answers are errors that drop nothing: evl_loop_free
 * -EBUSY (it is running its own teardown), a scheduling call fails and never
 * calls its free_data, and nothing crashes. */
static evl_loop *dying;
static int dying_what, dying_rc = 99;
static tok *dying_call_tok;
static void free_calls_dying_loop(void *data) {
    ((tok *)data)->freed++;
    switch (dying_what) {
    case 0:
        dying_rc = evl_loop_free(dying);
        break;
    case 1:
        dying_rc = evl_call_soon(dying, tcb, dying_call_tok, tfree);
        break;
    default:
        dying_rc = evl_set_timeout(dying, 0, tcb, dying_call_tok, tfree, NULL);
        break;
    }
}
static void free_data_during_loop_free(int what) {
    dying_what = what;
    dying = new_loop();
    tok *t = tk("timer-freed-by-loop-free");
    dying_call_tok = tk("scheduled-during-loop-free");
    evl_timer_id id = 0;
    CHECK_EQ(evl_set_timeout(dying, 60000, tcb, t, free_calls_dying_loop, &id), 0);
    CHECK_EQ(evl_timer_set_ref(dying, id, 0), 0);
    CHECK_EQ(evl_loop_free(dying), 0);
    FREED(t, 1);
    if (what == 0) {
        CHECK_EQ(dying_rc, -EBUSY);
    } else {
        CHECK(dying_rc < 0 && dying_rc != -ENOTRECOVERABLE);
        FREED(dying_call_tok, 0);
        CALLS(dying_call_tok, 0);
    }
}
static void child_loop_free_in_teardown(void) {
    free_data_during_loop_free(0);
}
static void child_call_soon_in_teardown(void) {
    free_data_during_loop_free(1);
}
static void child_set_timeout_in_teardown(void) {
    free_data_during_loop_free(2);
}

/* ==== streams of every kind, Unix sockets, pipes, fds, timer control ======== */

static void tdrain(evl_loop *loop, evl_stream *s, void *data) {
    (void)loop, (void)s;
    touch(data);
}

/* Each new stream, timer and connect call with NULL, stale and foreign
 * pointers, bad fds and out-of-range values: the documented errno, no
 * free_data, and the fds handed in left open. */
static void test_streams_bad_input(void) {
    tok *t = tk("streams-bad-input");
    evl_stream *s = NULL, *s2 = NULL;
    evl_server *srv = NULL;
    evl_connect_id cid = 0;
    evl_soon_id sid = 0;
    uint64_t v = 0;
    char buf[EVL_ADDRSTRLEN];
    int fds[2];
    CHECK_EQ(pipe(fds), 0);

    /* NULL loop. */
    CHECK_EQ(evl_unix_listen(NULL, "/tmp/x", 1, tconn, t, tfree, &srv), -EINVAL);
    CHECK_EQ(evl_unix_listen_fd(NULL, fds[0], tconn, t, tfree, &srv), -EINVAL);
    CHECK_EQ(evl_tcp_listen_fd(NULL, fds[0], tconn, t, tfree, &srv), -EINVAL);
    CHECK_EQ(evl_unix_connect(NULL, "/tmp/x", tconnect, t, tfree, &cid), -EINVAL);
    CHECK_EQ(evl_tcp_connect_ex(NULL, "127.0.0.1", 1, NULL, 0, 0, tconnect, t, tfree, &cid), -EINVAL);
    CHECK_EQ(evl_connect_cancel(NULL, 1), -EINVAL);
    CHECK_EQ(evl_unix_pair(NULL, &s, &s2), -EINVAL);
    CHECK_EQ(evl_pipe(NULL, &s, &s2), -EINVAL);
    CHECK_EQ(evl_pipe_open(NULL, fds[0], &s), -EINVAL);
    CHECK_EQ(evl_tcp_open(NULL, fds[0], &s), -EINVAL);
    CHECK_EQ(evl_unix_open(NULL, fds[0], &s), -EINVAL);
    CHECK_EQ(evl_server_path(NULL, (evl_server *)t, buf, sizeof buf), -EINVAL);
    CHECK_EQ(evl_stream_kind(NULL, (evl_stream *)t), -EINVAL);
    CHECK_EQ(evl_stream_set_water_marks(NULL, (evl_stream *)t, 2, 1), -EINVAL);
    CHECK_EQ(evl_stream_on_drain(NULL, (evl_stream *)t, tdrain, t, tfree), -EINVAL);
    CHECK_EQ(evl_stream_try_write(NULL, (evl_stream *)t, "x", 1), -EINVAL);
    CHECK_EQ(evl_stream_pause_reading(NULL, (evl_stream *)t), -EINVAL);
    CHECK_EQ(evl_stream_resume_reading(NULL, (evl_stream *)t), -EINVAL);
    CHECK_EQ(evl_stream_set_ref(NULL, (evl_stream *)t, 0), -EINVAL);
    CHECK_EQ(evl_tcp_peer_addr(NULL, (evl_stream *)t, buf, sizeof buf), -EINVAL);
    CHECK_EQ(evl_tcp_local_addr(NULL, (evl_stream *)t, buf, sizeof buf), -EINVAL);
    CHECK_EQ(evl_tcp_set_nodelay(NULL, (evl_stream *)t, 1), -EINVAL);
    CHECK_EQ(evl_tcp_set_keepalive(NULL, (evl_stream *)t, 1, 10), -EINVAL);
    CHECK_EQ(evl_tcp_close_reset(NULL, (evl_stream *)t, tcb, t, tfree), -EINVAL);
    CHECK_EQ(evl_unix_write_fds(NULL, (evl_stream *)t, "x", 1, fds, 1, tstatus, t, tfree), -EINVAL);
    CHECK_EQ(evl_unix_pending_fds(NULL, (evl_stream *)t), -EINVAL);
    CHECK_EQ(evl_unix_receive_fds(NULL, (evl_stream *)t, 1), -EINVAL);
    CHECK_EQ(evl_unix_take_fds(NULL, (evl_stream *)t, fds, 2), -EINVAL);
    CHECK_EQ(evl_timer_refresh(NULL, 1), -EINVAL);
    CHECK_EQ(evl_timer_get_period(NULL, 1, &v), -EINVAL);
    CHECK_EQ(evl_timer_get_period_ns(NULL, 1, &v), -EINVAL);
    CHECK_EQ(evl_timer_set_period(NULL, 1, 1), -EINVAL);
    CHECK_EQ(evl_timer_set_period_ns(NULL, 1, 1), -EINVAL);
    CHECK_EQ(evl_timer_due_in_ms(NULL, 1), -EINVAL);
    CHECK_EQ(evl_call_soon_cancellable(NULL, tcb, t, tfree, &sid), -EINVAL);
    CHECK_EQ(evl_cancel_soon(NULL, 1), -EINVAL);
    CHECK(s == NULL && s2 == NULL && srv == NULL && cid == 0 && sid == 0);

    evl_loop *loop = new_loop();
    /* NULL or bad arguments with a live loop. */
    char longpath[300];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[0] = '/';
    longpath[sizeof longpath - 1] = 0;
    CHECK_EQ(evl_unix_listen(loop, NULL, 1, tconn, t, tfree, &srv), -EINVAL);
    CHECK_EQ(evl_unix_listen(loop, "", 1, tconn, t, tfree, &srv), -EINVAL);
    CHECK_EQ(evl_unix_listen(loop, "/tmp/x", 1, NULL, t, tfree, &srv), -EINVAL);
    CHECK_EQ(evl_unix_listen(loop, "/tmp/x", 1, tconn, t, tfree, NULL), -EINVAL);
    CHECK_EQ(evl_unix_listen(loop, "/tmp/x", -1, tconn, t, tfree, &srv), -EINVAL);
    CHECK_EQ(evl_unix_listen(loop, longpath, 1, tconn, t, tfree, &srv), -EINVAL);
    CHECK_EQ(evl_unix_connect(loop, NULL, tconnect, t, tfree, &cid), -EINVAL);
    CHECK_EQ(evl_unix_connect(loop, "", tconnect, t, tfree, &cid), -EINVAL);
    CHECK_EQ(evl_unix_connect(loop, "/tmp/x", NULL, t, tfree, &cid), -EINVAL);
    CHECK_EQ(evl_unix_connect(loop, longpath, tconnect, t, tfree, &cid), -EINVAL);
    CHECK_EQ(evl_tcp_connect_ex(loop, NULL, 1, NULL, 0, 0, tconnect, t, tfree, &cid), -EINVAL);
    CHECK_EQ(evl_tcp_connect_ex(loop, "127.0.0.1", -1, NULL, 0, 0, tconnect, t, tfree, &cid), -EINVAL);
    CHECK_EQ(evl_tcp_connect_ex(loop, "127.0.0.1", 70000, NULL, 0, 0, tconnect, t, tfree, &cid), -EINVAL);
    CHECK_EQ(evl_tcp_connect_ex(loop, "127.0.0.1", 1, NULL, 1, 0, tconnect, t, tfree, &cid), -EINVAL);
    CHECK_EQ(evl_tcp_connect_ex(loop, "127.0.0.1", 1, "127.0.0.1", -1, 0, tconnect, t, tfree, &cid), -EINVAL);
    CHECK_EQ(evl_tcp_connect_ex(loop, "127.0.0.1", 1, "no such name", 0, 0, tconnect, t, tfree, &cid), -ENXIO);
    CHECK_EQ(evl_tcp_connect_ex(loop, "127.0.0.1", 1, NULL, 0, 0, NULL, t, tfree, &cid), -EINVAL);
    CHECK_EQ(evl_connect_cancel(loop, 0), -ENOENT);
    CHECK_EQ(evl_connect_cancel(loop, UINT64_MAX), -ENOENT);
    CHECK_EQ(evl_unix_pair(loop, NULL, &s2), -EINVAL);
    CHECK_EQ(evl_unix_pair(loop, &s, NULL), -EINVAL);
    CHECK_EQ(evl_pipe(loop, NULL, &s2), -EINVAL);
    CHECK_EQ(evl_pipe(loop, &s, NULL), -EINVAL);
    CHECK(s == NULL && s2 == NULL && srv == NULL && cid == 0);

    /* Bad fds: -EBADF, nothing taken; the loop's own fd: -EINVAL. */
    /* Far above the lowest free fd, so that no fd made meanwhile (the
     * duplicates evl_unix_write_fds makes, say) takes its number. */
    int closed_fd = 1000;
    while (fcntl(closed_fd, F_GETFD) >= 0)
        closed_fd++;
    const int bad_fds[] = {-1, INT_MIN, INT_MAX, closed_fd};
    for (size_t i = 0; i < sizeof bad_fds / sizeof bad_fds[0]; i++) {
        int fd = bad_fds[i];
        CHECK_EQ(evl_guess_handle(fd), -EBADF);
        CHECK_EQ(evl_pipe_open(loop, fd, &s), -EBADF);
        CHECK_EQ(evl_tcp_open(loop, fd, &s), -EBADF);
        CHECK_EQ(evl_unix_open(loop, fd, &s), -EBADF);
        CHECK_EQ(evl_tcp_listen_fd(loop, fd, tconn, t, tfree, &srv), -EBADF);
        CHECK_EQ(evl_unix_listen_fd(loop, fd, tconn, t, tfree, &srv), -EBADF);
    }
    int backend = evl_backend_fd(loop);
    CHECK_EQ(evl_pipe_open(loop, backend, &s), -EINVAL);
    CHECK_EQ(evl_pipe_open(loop, fds[0], NULL), -EINVAL);
    CHECK_EQ(evl_tcp_open(loop, fds[0], NULL), -EINVAL);
    CHECK_EQ(evl_unix_open(loop, fds[0], NULL), -EINVAL);
    CHECK_EQ(evl_tcp_listen_fd(loop, fds[0], NULL, t, tfree, &srv), -EINVAL);
    CHECK_EQ(evl_tcp_listen_fd(loop, fds[0], tconn, t, tfree, NULL), -EINVAL);
    CHECK_EQ(evl_unix_listen_fd(loop, fds[0], NULL, t, tfree, &srv), -EINVAL);
    CHECK_EQ(evl_unix_listen_fd(loop, fds[0], tconn, t, tfree, NULL), -EINVAL);
    CHECK_EQ(evl_tcp_listen_fd(loop, fds[0], tconn, t, tfree, &srv), -EINVAL); /* a pipe */
    char file[] = "/tmp/evl-hostile-XXXXXX";
    int f = mkstemp(file);
    unlink(file);
    CHECK_EQ(evl_tcp_open(loop, f, &s), -EINVAL); /* a regular file: not TCP */
    CHECK_EQ(evl_pipe_open(loop, f, &s), -EPERM); /* nor pollable */
    CHECK(fcntl(f, F_GETFD) >= 0);
    close(f);
    CHECK(fcntl(fds[0], F_GETFD) >= 0 && fcntl(backend, F_GETFD) >= 0);
    CHECK(s == NULL && srv == NULL);
    CHECK_EQ(evl_run(loop, EVL_RUN_NOWAIT), 0); /* the loop still works */

    /* Timers and cancellable callbacks: stale ids, NULL outs, huge values. */
    const uint64_t stale_ids[] = {0, 1, 424242, UINT64_MAX};
    for (size_t i = 0; i < sizeof stale_ids / sizeof stale_ids[0]; i++) {
        uint64_t id = stale_ids[i];
        CHECK_EQ(evl_timer_refresh(loop, id), -ENOENT);
        CHECK_EQ(evl_timer_get_period(loop, id, &v), -ENOENT);
        CHECK_EQ(evl_timer_get_period_ns(loop, id, &v), -ENOENT);
        CHECK_EQ(evl_timer_set_period(loop, id, 1), -ENOENT);
        CHECK_EQ(evl_timer_set_period_ns(loop, id, 1), -ENOENT);
        CHECK_EQ(evl_timer_due_in_ms(loop, id), -ENOENT);
        CHECK_EQ(evl_cancel_soon(loop, id), 0);
        CHECK_EQ(evl_connect_cancel(loop, id), -ENOENT);
    }
    CHECK_EQ(evl_call_soon_cancellable(loop, NULL, t, tfree, &sid), -EINVAL);
    CHECK(sid == 0);
    tok *iv = tk("interval-huge-period");
    evl_timer_id tid = 0;
    CHECK_EQ(evl_set_interval(loop, 1000, tcb, iv, tfree, &tid), 0);
    CHECK_EQ(evl_timer_get_period(loop, tid, NULL), -EINVAL);
    CHECK_EQ(evl_timer_set_period(loop, tid, UINT64_MAX), 0);
    CHECK_EQ(evl_timer_set_period_ns(loop, tid, UINT64_MAX), 0);
    CHECK_EQ(evl_timer_refresh(loop, tid), 0);
    CHECK(evl_timer_due_in_ms(loop, tid) > 1000000000LL); /* years away, no overflow */
    CHECK_EQ(evl_timer_set_period(loop, tid, 0), 0);
    CHECK_EQ(evl_clear_timer(loop, tid), 1);
    FREED(iv, 1);
    CALLS(iv, 0);

    /* Foreign and wrong-kind pointers, then stale ones. */
    evl_stream *ps = NULL, *pw = NULL;
    CHECK_EQ(evl_pipe(loop, &ps, &pw), 0);
    evl_server *as_server = (evl_server *)ps;
    CHECK_EQ(evl_server_path(loop, as_server, buf, sizeof buf), -EINVAL);
    CHECK_EQ(evl_server_path(loop, NULL, buf, sizeof buf), -EINVAL);
    evl_stream *const not_streams[] = {NULL, (evl_stream *)t, (evl_stream *)loop};
    for (size_t i = 0; i < sizeof not_streams / sizeof not_streams[0]; i++) {
        evl_stream *x = not_streams[i];
        CHECK_EQ(evl_stream_kind(loop, x), -EINVAL);
        CHECK_EQ(evl_stream_set_water_marks(loop, x, 2, 1), -EINVAL);
        CHECK_EQ(evl_stream_on_drain(loop, x, tdrain, t, tfree), -EINVAL);
        CHECK_EQ(evl_stream_on_drain(loop, x, NULL, t, tfree), -EINVAL);
        CHECK_EQ(evl_stream_try_write(loop, x, "x", 1), -EINVAL);
        CHECK_EQ(evl_stream_pause_reading(loop, x), -EINVAL);
        CHECK_EQ(evl_stream_resume_reading(loop, x), -EINVAL);
        CHECK_EQ(evl_stream_set_ref(loop, x, 1), -EINVAL);
        CHECK_EQ(evl_tcp_peer_addr(loop, x, buf, sizeof buf), -EINVAL);
        CHECK_EQ(evl_tcp_local_addr(loop, x, buf, sizeof buf), -EINVAL);
        CHECK_EQ(evl_tcp_set_nodelay(loop, x, 1), -EINVAL);
        CHECK_EQ(evl_tcp_set_keepalive(loop, x, 1, 10), -EINVAL);
        CHECK_EQ(evl_tcp_close_reset(loop, x, tcb, t, tfree), -EINVAL);
        CHECK_EQ(evl_unix_write_fds(loop, x, "x", 1, fds, 1, tstatus, t, tfree), -EINVAL);
        CHECK_EQ(evl_unix_pending_fds(loop, x), -EINVAL);
        CHECK_EQ(evl_unix_receive_fds(loop, x, 1), -EINVAL);
        CHECK_EQ(evl_unix_take_fds(loop, x, fds, 2), -EINVAL);
    }
    /* A pipe is not TCP and not a Unix socket. */
    CHECK_EQ(evl_tcp_peer_addr(loop, ps, buf, sizeof buf), -ENOTSUP);
    CHECK_EQ(evl_tcp_set_nodelay(loop, ps, 1), -ENOTSUP);
    CHECK_EQ(evl_tcp_set_keepalive(loop, ps, 0, 0), -ENOTSUP);
    CHECK_EQ(evl_tcp_close_reset(loop, ps, tcb, t, tfree), -ENOTSUP);
    CHECK_EQ(evl_unix_write_fds(loop, pw, "x", 1, fds, 1, tstatus, t, tfree), -ENOTSUP);
    CHECK_EQ(evl_unix_pending_fds(loop, ps), -ENOTSUP);
    CHECK_EQ(evl_unix_receive_fds(loop, ps, 1), -ENOTSUP);
    CHECK_EQ(evl_unix_take_fds(loop, ps, NULL, 0), -ENOTSUP);
    /* Huge and out-of-range values. */
    CHECK_EQ(evl_stream_try_write(loop, pw, NULL, 1), -EINVAL);
    CHECK_EQ(evl_stream_try_write(loop, pw, "x", SIZE_MAX), -EINVAL);
    CHECK_EQ(evl_stream_try_write(loop, pw, "x", (size_t)PTRDIFF_MAX + 1), -EINVAL);
    CHECK_EQ(evl_stream_try_write(loop, pw, NULL, 0), 0);
    CHECK_EQ(evl_stream_set_water_marks(loop, pw, 0, SIZE_MAX), -EINVAL);
    CHECK_EQ(evl_stream_set_water_marks(loop, pw, SIZE_MAX, 0), 0);
    CHECK_EQ(evl_stream_set_water_marks(loop, pw, SIZE_MAX, SIZE_MAX), 0);
    CHECK_EQ(evl_stream_resume_reading(loop, ps), 0); /* not paused: a no-op */
    CHECK_EQ(evl_stream_pause_reading(loop, ps), 0);  /* not reading: a no-op */

    evl_stream *ua = NULL, *ub = NULL;
    CHECK_EQ(evl_unix_pair(loop, &ua, &ub), 0);
    CHECK_EQ(evl_unix_write_fds(loop, ua, NULL, 1, fds, 1, tstatus, t, tfree), -EINVAL);
    CHECK_EQ(evl_unix_write_fds(loop, ua, "x", 0, fds, 1, tstatus, t, tfree), -EINVAL);
    CHECK_EQ(evl_unix_write_fds(loop, ua, "x", SIZE_MAX, fds, 1, tstatus, t, tfree), -EINVAL);
    CHECK_EQ(evl_unix_write_fds(loop, ua, "x", 1, NULL, 1, tstatus, t, tfree), -EINVAL);
    CHECK_EQ(evl_unix_write_fds(loop, ua, "x", 1, fds, 254, tstatus, t, tfree), -EINVAL);
    CHECK_EQ(evl_unix_write_fds(loop, ua, "x", 1, fds, SIZE_MAX, tstatus, t, tfree), -EINVAL);
    int with_bad[4] = {fds[0], closed_fd, fds[1], -1};
    CHECK_EQ(evl_unix_write_fds(loop, ua, "x", 1, with_bad, 3, tstatus, t, tfree), -EBADF);
    CHECK_EQ(evl_unix_write_fds(loop, ua, "x", 1, with_bad + 2, 2, tstatus, t, tfree), -EBADF);
    CHECK(fcntl(fds[0], F_GETFD) >= 0 && fcntl(fds[1], F_GETFD) >= 0);
    /* Sent fds stay the caller's, even one of evloop's own (sent twice). */
    int own[3] = {fds[0], fds[0], backend};
    tok *wf = tk("write-fds-own");
    CHECK_EQ(evl_unix_write_fds(loop, ua, "x", 1, own, 3, tstatus, wf, tfree), 1);
    CHECK(fcntl(fds[0], F_GETFD) >= 0 && fcntl(backend, F_GETFD) >= 0);
    CHECK_EQ(evl_unix_take_fds(loop, ub, NULL, 0), 0); /* none pending */
    CHECK_EQ(evl_unix_take_fds(loop, ub, NULL, SIZE_MAX), 0);
    CHECK_EQ(evl_unix_pending_fds(loop, ub), 0);
    CHECK_EQ(evl_tcp_set_keepalive(loop, ua, 1, 10), -ENOTSUP);
    FREED(t, 0);
    CALLS(t, 0);

    /* A NULL drain callback: accepted, its data freed before the call returns. */
    tok *dn = tk("drain-null-cb");
    CHECK_EQ(evl_stream_on_drain(loop, ua, NULL, dn, tfree), 0);
    FREED(dn, 1);
    /* Closed: -ENOTCONN while the close is pending, -EINVAL once freed. */
    CHECK_EQ(evl_stream_close(loop, ps, NULL, NULL, NULL), 0);
    CHECK_EQ(evl_stream_try_write(loop, ps, "x", 1), -ENOTCONN);
    CHECK_EQ(evl_stream_pause_reading(loop, ps), -ENOTCONN);
    CHECK_EQ(evl_stream_resume_reading(loop, ps), -ENOTCONN);
    CHECK_EQ(evl_stream_set_ref(loop, ps, 0), -ENOTCONN);
    CHECK_EQ(evl_stream_on_drain(loop, ps, tdrain, t, tfree), -ENOTCONN);
    CHECK_EQ(evl_stream_kind(loop, ps), EVL_HANDLE_PIPE);
    CHECK_EQ(evl_stream_close(loop, ua, NULL, NULL, NULL), 0);
    CHECK_EQ(evl_unix_write_fds(loop, ua, "x", 1, fds, 1, tstatus, t, tfree), -ENOTCONN);
    CHECK(fcntl(fds[0], F_GETFD) >= 0); /* a failed write_fds leaves the fds alone */
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    CALLS(wf, 1); /* sent before the close */
    FREED(wf, 1);
    CHECK_EQ(evl_stream_kind(loop, ps), -EINVAL); /* stale */
    CHECK_EQ(evl_stream_try_write(loop, ps, "x", 1), -EINVAL);
    CHECK_EQ(evl_unix_pending_fds(loop, ua), -EINVAL);
    CHECK_EQ(evl_stream_on_drain(loop, ps, tdrain, t, tfree), -EINVAL);
    FREED(t, 0);

    /* Streams never closed are freed with the loop: their drain data once. */
    tok *dl = tk("drain-freed-with-loop");
    CHECK_EQ(evl_stream_on_drain(loop, pw, tdrain, dl, tfree), 0);
    FREE_LOOP(loop);
    FREED(dl, 1);
    CALLS(dl, 0);
    close(fds[0]);
    close(fds[1]);

    /* The errnos these calls document have names. */
    CHECK(strcmp(evl_err_name(-ENOTSUP), "ENOTSUP") == 0);
    CHECK(strcmp(evl_err_name(-ENOBUFS), "ENOBUFS") == 0);
    CHECK(strcmp(evl_err_name(-ENXIO), "ENXIO") == 0);
    CHECK(strcmp(evl_err_name(-EADDRINUSE), "EADDRINUSE") == 0);
}

/* Calls made from inside the new callbacks, and from free_data. */
static evl_connect_id own_connect;
static int own_cancel_rc = 99;
static void connect_cancels_itself(evl_loop *loop, int status, evl_stream *s, void *data) {
    touch(data);
    CHECK_EQ(status, -ENOENT);
    CHECK(s == NULL);
    own_cancel_rc = evl_connect_cancel(loop, own_connect);
}

static evl_soon_id own_soon;
static int own_soon_rc = 99;
static void soon_cancels_itself(evl_loop *loop, void *data) {
    touch(data);
    own_soon_rc = evl_cancel_soon(loop, own_soon);
}

static evl_timer_id own_timer;
static int own_refresh_rc = 99;
static int64_t own_due = 99;
static void timeout_refreshes_itself(evl_loop *loop, void *data) {
    touch(data);
    own_refresh_rc = evl_timer_refresh(loop, own_timer);
    own_due = evl_timer_due_in_ms(loop, own_timer);
}

static evl_loop *drain_loop;
static evl_stream *drain_stream;
static int drain_close_rc = 99;
static void free_closes_stream(void *data) {
    ((tok *)data)->freed++;
    drain_close_rc = evl_stream_close(drain_loop, drain_stream, NULL, NULL, NULL);
}

static void test_streams_inside_callbacks(void) {
    evl_loop *loop = new_loop();
    /* A connect callback cancels its own (finished) request. */
    tok *ct = tk("connect-cancels-itself");
    CHECK_EQ(evl_unix_connect(loop, "/nonexistent/evl.sock", connect_cancels_itself, ct, tfree,
                              &own_connect), 0);
    /* A cancellable callback cancels itself; a one-shot refreshes itself. */
    tok *st = tk("soon-cancels-itself");
    CHECK_EQ(evl_call_soon_cancellable(loop, soon_cancels_itself, st, tfree, &own_soon), 0);
    tok *tt = tk("timeout-refreshes-itself");
    CHECK_EQ(evl_set_timeout(loop, 0, timeout_refreshes_itself, tt, tfree, &own_timer), 0);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    CALLS(ct, 1);
    FREED(ct, 1);
    CHECK_EQ(own_cancel_rc, -ENOENT);
    CALLS(st, 1);
    FREED(st, 1);
    CHECK_EQ(own_soon_rc, 0); /* running: no longer queued */
    CALLS(tt, 1);
    FREED(tt, 1);
    /* libuv's uv_timer_again on a finished one-shot is a no-op; here the
     * timer is not pending inside its own call (header: -ENOENT). */
    CHECK_EQ(own_refresh_rc, -ENOENT);
    CHECK_EQ(own_due, -ENOENT);

    /* A drain callback's free_data closes the stream it belonged to. */
    evl_stream *r = NULL;
    drain_loop = loop;
    CHECK_EQ(evl_pipe(loop, &r, &drain_stream), 0);
    tok *dt = tk("drain-free-closes");
    CHECK_EQ(evl_stream_on_drain(loop, drain_stream, tdrain, dt, free_closes_stream), 0);
    CHECK_EQ(evl_stream_on_drain(loop, drain_stream, NULL, NULL, NULL), 0);
    FREED(dt, 1);
    CHECK_EQ(drain_close_rc, 0);
    CHECK_EQ(evl_stream_close(loop, r, NULL, NULL, NULL), 0);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    FREE_LOOP(loop);
}

/* ==== main ===================================================================== */

/* Diagnostics entry points: NULL, empty, tiny buffers, twice, inside a
 * callback. */
static void diag_in_callback(evl_loop *loop, void *data) {
    (void)data;
    char small[8];
    CHECK(evl_alive_report(loop, small, sizeof small) > 0);
    CHECK_EQ(small[7], '\0');
    evl_metrics m;
    CHECK_EQ(evl_metrics_get(loop, &m), 0);
    CHECK(m.iterations >= 1);
    CHECK_EQ(evl_set_slow_callback_ms(loop, -1), 0);
}

/* ---- UDP: bad input, stale handles, errors from the kernel ---------------- */

static int udp_status = 1;
static void udp_status_cb(evl_loop *loop, int status, void *data) {
    (void)loop;
    udp_status = status;
    touch(data);
}
static void trecv(evl_loop *loop, evl_udp *udp, ssize_t n, const char *buf, const char *from_ip,
                  int from_port, void *data) {
    (void)loop, (void)udp, (void)n, (void)buf, (void)from_ip, (void)from_port;
    touch(data);
}

static void test_udp(void) {
    evl_loop *loop = new_loop();
    tok *t = tk("udp-never");
    evl_udp *u = NULL, *v = NULL;
    char buf[80];
    /* NULLs and bad values: nothing made, free_data never called. */
    CHECK_EQ(evl_udp_bind(NULL, "127.0.0.1", 0, 0, &u), -EINVAL);
    CHECK_EQ(evl_udp_bind(loop, "127.0.0.1", 0, 0, NULL), -EINVAL);
    CHECK_EQ(evl_udp_bind(loop, NULL, 0, 0, &u), -EINVAL);
    CHECK_EQ(evl_udp_bind(loop, "127.0.0.1", 70000, 0, &u), -EINVAL);
    CHECK_EQ(evl_udp_bind(loop, "127.0.0.1", -1, 0, &u), -EINVAL);
    CHECK_EQ(evl_udp_bind(loop, "127.0.0.1", 0, 4, &u), -EINVAL);
    CHECK_EQ(evl_udp_bind(loop, "not an ip", 0, 0, &u), -ENXIO);
    CHECK(u == NULL);
    CHECK_EQ(evl_udp_bind(loop, "127.0.0.1", 0, EVL_UDP_REUSEADDR, &u), 0);
    CHECK_EQ(evl_udp_bind(loop, "localhost", 0, 0, &v), 0);
    /* Foreign and NULL handles. */
    evl_udp *foreign = (evl_udp *)t;
    CHECK_EQ(evl_udp_local_addr(loop, foreign, buf, sizeof buf), -EINVAL);
    CHECK_EQ(evl_udp_local_addr(loop, NULL, buf, sizeof buf), -EINVAL);
    CHECK_EQ(evl_udp_send(loop, foreign, "x", 1, "127.0.0.1", 9, tstatus, t, tfree), -EINVAL);
    CHECK_EQ(evl_udp_recv_start(loop, foreign, trecv, t, tfree), -EINVAL);
    CHECK_EQ(evl_udp_recv_start(loop, u, NULL, t, tfree), -EINVAL);
    CHECK_EQ(evl_udp_recv_stop(loop, foreign), -EINVAL);
    CHECK_EQ(evl_udp_set_ref(loop, foreign, 0), -EINVAL);
    CHECK_EQ(evl_udp_set_broadcast(loop, foreign, 1), -EINVAL);
    CHECK_EQ(evl_udp_connect(loop, foreign, "127.0.0.1", 9), -EINVAL);
    CHECK_EQ(evl_udp_try_send(loop, foreign, "x", 1, NULL, 0), -EINVAL);
    CHECK_EQ(evl_udp_set_membership(loop, foreign, "239.1.2.3", NULL, 1), -EINVAL);
    CHECK_EQ(evl_udp_set_membership(loop, u, NULL, NULL, 1), -EINVAL);
    CHECK_EQ(evl_udp_set_membership(loop, u, "not an ip", NULL, 1), -EINVAL);
    CHECK_EQ(evl_udp_set_membership(loop, u, "239.1.2.3", "bad", 1), -EINVAL);
    CHECK_EQ(evl_udp_set_membership(loop, u, "10.0.0.1", NULL, 1), -EINVAL); /* not multicast */
    CHECK_EQ(evl_udp_set_multicast_ttl(loop, u, 256), -EINVAL);
    CHECK_EQ(evl_udp_set_multicast_ttl(loop, u, -1), -EINVAL);
    CHECK_EQ(evl_udp_set_multicast_ttl(loop, u, 4), 0);
    CHECK_EQ(evl_udp_set_multicast_loop(loop, u, 0), 0);
    CHECK_EQ(evl_udp_set_multicast_loop(loop, foreign, 0), -EINVAL);
    CHECK_EQ(evl_udp_close(loop, foreign), -EINVAL);
    CHECK_EQ(evl_udp_close(NULL, u), -EINVAL);
    /* recv_start twice: the replaced callback's data is freed at once;
     * recv_stop frees the new one's; a second stop is harmless. */
    tok *r1 = tk("udp-recv-replaced"), *r2 = tk("udp-recv-stopped");
    CHECK_EQ(evl_udp_recv_start(loop, u, trecv, r1, tfree), 0);
    CHECK_EQ(evl_udp_recv_start(loop, u, trecv, r2, tfree), 0);
    FREED(r1, 1);
    FREED(r2, 0);
    CHECK_EQ(evl_udp_recv_stop(loop, u), 0);
    FREED(r2, 1);
    CHECK_EQ(evl_udp_recv_stop(loop, u), 0);
    /* Bad buffers and addresses. */
    CHECK_EQ(evl_udp_local_addr(loop, u, buf, 1), -ENOBUFS);
    CHECK_EQ(evl_udp_local_addr(loop, u, NULL, 10), -EINVAL);
    CHECK(evl_udp_local_addr(loop, u, buf, sizeof buf) > 0);
    CHECK_EQ(evl_udp_send(loop, u, NULL, 5, "127.0.0.1", 9, tstatus, t, tfree), -EINVAL);
    CHECK_EQ(evl_udp_send(loop, u, "x", (size_t)-1, "127.0.0.1", 9, tstatus, t, tfree), -EINVAL);
    CHECK_EQ(evl_udp_send(loop, u, "x", 1, "127.0.0.1", 70000, tstatus, t, tfree), -EINVAL);
    CHECK_EQ(evl_udp_try_send(loop, u, NULL, 5, "127.0.0.1", 9), -EINVAL);
    /* Sending without an address on an unconnected socket. */
    CHECK_EQ(evl_udp_try_send(loop, u, "x", 1, NULL, 0), -EDESTADDRREQ);
    CHECK_EQ(evl_udp_send(loop, u, "x", 1, NULL, 0, tstatus, t, tfree), -EDESTADDRREQ);
    /* Connect twice, disconnect twice. */
    CHECK_EQ(evl_udp_connect(loop, u, "127.0.0.1", 0), -EINVAL);
    CHECK_EQ(evl_udp_local_addr(loop, v, buf, sizeof buf) > 0, 1);
    int vport = 0;
    sscanf(strrchr(buf, ':') + 1, "%d", &vport);
    CHECK_EQ(evl_udp_connect(loop, u, "127.0.0.1", vport), 0);
    CHECK_EQ(evl_udp_connect(loop, u, "127.0.0.1", vport), -EISCONN);
    CHECK_EQ(evl_udp_send(loop, u, "x", 1, "127.0.0.1", vport, tstatus, t, tfree), -EISCONN);
    CHECK_EQ(evl_udp_connect(loop, u, NULL, 0), 0);
    CHECK_EQ(evl_udp_connect(loop, u, NULL, 0), -ENOTCONN);
    FREED(t, 0);
    /* A queued send's callback and data outlive a close: -ECANCELED or 0. */
    tok *s = tk("udp-send");
    udp_status = 1;
    CHECK_EQ(evl_udp_send(loop, u, "hello", 5, "127.0.0.1", vport, udp_status_cb, s, tfree), 0);
    tok *r = tk("udp-recv");
    CHECK_EQ(evl_udp_recv_start(loop, v, trecv, r, tfree), 0);
    CHECK_EQ(evl_udp_close(loop, u), 0);
    CHECK_EQ(evl_udp_close(loop, u), -EINVAL); /* stale now */
    CHECK_EQ(evl_udp_local_addr(loop, u, buf, sizeof buf), -EINVAL);
    CHECK_EQ(evl_udp_close(loop, v), 0); /* its receive data is freed */
    FREED(r, 1);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    FREED(s, 1);
    CHECK_EQ(s->calls, 1);
    CHECK(udp_status == 0 || udp_status == -ECANCELED);
    CHECK_EQ(r->late, 0);
    /* A socket still open when the loop is freed is freed with it. */
    tok *left = tk("udp-left-open");
    evl_udp *w = NULL;
    CHECK_EQ(evl_udp_bind(loop, "127.0.0.1", 0, 0, &w), 0);
    CHECK_EQ(evl_udp_recv_start(loop, w, trecv, left, tfree), 0);
    CHECK_EQ(evl_udp_set_ref(loop, w, 0), 0);
    CHECK_EQ(evl_is_alive(loop), 0);
    CHECK_EQ(evl_loop_free(loop), 0);
    FREED(left, 1);
}

/* ---- Child processes: bad options, stale handles, the loop freed first ---- */

static int exits;
static void texit(evl_loop *loop, evl_process *p, int64_t status, int signal, void *data) {
    (void)loop, (void)p, (void)status, (void)signal;
    exits++;
    touch(data);
}

static void test_process(void) {
    evl_loop *loop = new_loop();
    tok *t = tk("spawn-never");
    evl_process *p = NULL;
    evl_stream *pipes[3];
    const char *args[] = {"x", NULL};
    evl_process_options ok = {.file = "true"};
    evl_process_options o = ok;
    CHECK_EQ(evl_spawn(NULL, &o, texit, t, tfree, &p, NULL), -EINVAL);
    CHECK_EQ(evl_spawn(loop, NULL, texit, t, tfree, &p, NULL), -EINVAL);
    CHECK_EQ(evl_spawn(loop, &o, texit, t, tfree, NULL, NULL), -EINVAL);
    o.file = NULL;
    CHECK_EQ(evl_spawn(loop, &o, texit, t, tfree, &p, NULL), -EINVAL);
    o.file = "";
    CHECK_EQ(evl_spawn(loop, &o, texit, t, tfree, &p, NULL), -EINVAL);
    o = ok;
    o.stdio[1] = 7;
    CHECK_EQ(evl_spawn(loop, &o, texit, t, tfree, &p, NULL), -EINVAL);
    o.stdio[1] = -1;
    CHECK_EQ(evl_spawn(loop, &o, texit, t, tfree, &p, NULL), -EINVAL);
    o = ok;
    o.flags = 8;
    CHECK_EQ(evl_spawn(loop, &o, texit, t, tfree, &p, NULL), -EINVAL);
    o = ok;
    o.stdio[1] = EVL_STDIO_PIPE; /* a pipe needs somewhere to go */
    CHECK_EQ(evl_spawn(loop, &o, texit, t, tfree, &p, NULL), -EINVAL);
    o = ok;
    const char *bad_env[] = {"NO_EQUALS_SIGN", NULL};
    o.env = bad_env;
    CHECK_EQ(evl_spawn(loop, &o, texit, t, tfree, &p, NULL), -EINVAL);
    /* Bad extra fds: a count out of range, NULL with a count, an entry
     * that is not an open fd; nothing is spawned. */
    int one_fd[] = {1};
    o = ok;
    o.fds = one_fd;
    o.fd_count = -1;
    CHECK_EQ(evl_spawn(loop, &o, texit, t, tfree, &p, NULL), -EINVAL);
    o.fd_count = 1025;
    CHECK_EQ(evl_spawn(loop, &o, texit, t, tfree, &p, NULL), -EINVAL);
    o.fd_count = INT_MAX;
    CHECK_EQ(evl_spawn(loop, &o, texit, t, tfree, &p, NULL), -EINVAL);
    o.fds = NULL;
    o.fd_count = 1;
    CHECK_EQ(evl_spawn(loop, &o, texit, t, tfree, &p, NULL), -EINVAL);
    int bad_fds[][2] = {{1, 999999}, {-2, 1}, {INT_MIN, 1}};
    for (int i = 0; i < 3; i++) {
        o.fds = bad_fds[i];
        o.fd_count = 2;
        CHECK_EQ(evl_spawn(loop, &o, texit, t, tfree, &p, NULL), -EBADF);
    }
    /* More than 65,536 arguments (before anything is read past the
     * limit), and an environment as long. */
    const char **many = calloc(65538, sizeof *many);
    CHECK(many != NULL);
    for (int i = 0; i < 65537; i++)
        many[i] = "a";
    o = ok;
    o.args = many;
    CHECK_EQ(evl_spawn(loop, &o, texit, t, tfree, &p, NULL), -E2BIG);
    for (int i = 0; i < 65537; i++)
        many[i] = "A=1";
    o = ok;
    o.env = many;
    CHECK_EQ(evl_spawn(loop, &o, texit, t, tfree, &p, NULL), -E2BIG);
    free(many);
    o = ok;
    o.file = "/no/such/program/evloop";
    o.args = args;
    CHECK_EQ(evl_spawn(loop, &o, texit, t, tfree, &p, NULL), -ENOENT);
    o = ok;
    o.cwd = "/no/such/dir/evloop";
    CHECK(evl_spawn(loop, &o, texit, t, tfree, &p, NULL) < 0);
    CHECK(p == NULL);
    FREED(t, 0);
    CHECK_EQ(evl_is_alive(loop), 0);
    /* Stale and foreign handles. */
    CHECK_EQ(evl_process_pid(loop, (evl_process *)t), -EINVAL);
    CHECK_EQ(evl_process_kill(loop, (evl_process *)t, SIGTERM), -EINVAL);
    CHECK_EQ(evl_process_set_ref(loop, NULL, 0), -EINVAL);
    CHECK_EQ(evl_process_pid(NULL, (evl_process *)t), -EINVAL);
    /* evl_kill of any pid. */
    CHECK_EQ(evl_kill(getpid(), 0), 0);
    CHECK_EQ(evl_kill(getpid(), -1), -EINVAL);
    CHECK_EQ(evl_kill(getpid(), 4096), -EINVAL);
    CHECK_EQ(evl_kill(INT_MAX, 0), -ESRCH);
    /* A child that exits: callback once, then the handle is gone. */
    tok *e = tk("spawn-true");
    exits = 0;
    o = ok;
    CHECK_EQ(evl_spawn(loop, &o, texit, e, tfree, &p, pipes), 0);
    CHECK(pipes[0] == NULL && pipes[1] == NULL && pipes[2] == NULL);
    CHECK(evl_process_pid(loop, p) > 0);
    CHECK_EQ(evl_process_kill(loop, p, 0), 0);
    CHECK_EQ(evl_process_kill(loop, p, -1), -EINVAL);
    CHECK_EQ(evl_process_kill(loop, p, 4096), -EINVAL);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    CHECK_EQ(exits, 1);
    /* After the exit the handle still answers, until closed: a pointer C
     * holds never names another process. */
    FREED(e, 0);
    CHECK(evl_process_pid(loop, p) > 0);
    CHECK_EQ(evl_process_kill(loop, p, SIGTERM), -ESRCH);
    CHECK_EQ(evl_process_set_ref(loop, p, 1), 0);
    CHECK_EQ(evl_process_close(loop, p), 0);
    FREED(e, 1);
    CHECK_EQ(e->late, 0);
    CHECK_EQ(evl_process_pid(loop, p), -EINVAL);
    CHECK_EQ(evl_process_close(loop, p), -EINVAL);
    CHECK_EQ(evl_process_close(NULL, p), -EINVAL);
    /* Closed before it exits: the callback never runs, the child is reaped. */
    tok *early = tk("spawn-closed-early");
    const char *short_args[] = {"0.05", NULL};
    o = ok;
    o.file = "sleep";
    o.args = short_args;
    exits = 0;
    CHECK_EQ(evl_spawn(loop, &o, texit, early, tfree, &p, pipes), 0);
    CHECK_EQ(evl_process_close(loop, p), 0);
    FREED(early, 1);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0); /* waits for the reap */
    CHECK_EQ(exits, 0);
    CHECK_EQ(early->late, 0);
    /* Closed before it exits, and a new child spawned at once (its handle
     * likely at the closed one's address): only the new child's callback
     * runs, with its own data. */
    tok *gone = tk("spawn-closed-then-reused");
    tok *next = tk("spawn-after-a-close");
    evl_process *p2 = NULL;
    exits = 0;
    CHECK_EQ(evl_spawn(loop, &o, texit, gone, tfree, &p, NULL), 0);
    CHECK_EQ(evl_process_close(loop, p), 0);
    FREED(gone, 1);
    o = ok;
    o.file = "sleep";
    const char *later_args[] = {"0.3", NULL};
    o.args = later_args;
    CHECK_EQ(evl_spawn(loop, &o, texit, next, tfree, &p2, NULL), 0);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    CHECK_EQ(exits, 1);
    CALLS(gone, 0);
    CHECK_EQ(gone->late, 0);
    CALLS(next, 1);
    CHECK_EQ(evl_process_close(loop, p2), 0);
    FREED(next, 1);
    /* An unref'd child that never ends: the loop is not alive, and freeing
     * it frees the handle and its data without a callback. */
    tok *slow = tk("spawn-sleep");
    const char *sleep_args[] = {"30", NULL};
    o = ok;
    o.file = "sleep";
    o.args = sleep_args;
    o.stdio[0] = EVL_STDIO_PIPE;
    CHECK_EQ(evl_spawn(loop, &o, texit, slow, tfree, &p, pipes), 0);
    CHECK(pipes[0] != NULL && pipes[1] == NULL);
    CHECK_EQ(evl_stream_close(loop, pipes[0], NULL, NULL, NULL), 0);
    CHECK_EQ(evl_process_set_ref(loop, p, 0), 0);
    int pid = evl_process_pid(loop, p);
    CHECK(pid > 0);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0); /* runs the pipe's close */
    CHECK_EQ(evl_is_alive(loop), 0);
    CHECK_EQ(evl_loop_free(loop), 0);
    FREED(slow, 1);
    CHECK_EQ(slow->calls, 0);
    CHECK_EQ(evl_kill(pid, SIGKILL), 0); /* ours to end: nobody else will */
}

/* ---- Path watching and name resolution: bad input, stale handles ---------- */

static void twatch(evl_loop *loop, evl_fs_watch *w, int event, const char *path,
                   const char *to, int is_dir, void *data) {
    (void)loop, (void)w, (void)event, (void)path, (void)to, (void)is_dir;
    touch(data);
}
static int resolved = -1;
static void taddrs(evl_loop *loop, int status, const char *const *addrs, size_t count,
                   void *data) {
    (void)loop;
    resolved = status == 0 ? (int)count : status;
    for (size_t i = 0; status == 0 && i < count; i++)
        CHECK(strncmp(addrs[i], "127.0.0.1:", 10) == 0 || strncmp(addrs[i], "[::1]:", 6) == 0);
    touch(data);
}
static void tnames(evl_loop *loop, int status, const char *host, const char *service,
                   void *data) {
    (void)loop, (void)status, (void)host, (void)service;
    touch(data);
}

static void test_watch_dns(void) {
    evl_loop *loop = new_loop();
    tok *t = tk("watch-never");
    evl_fs_watch *w = NULL;
    CHECK_EQ(evl_fs_watch_start(NULL, "/tmp", 0, twatch, t, tfree, &w), -EINVAL);
    CHECK_EQ(evl_fs_watch_start(loop, NULL, 0, twatch, t, tfree, &w), -EINVAL);
    CHECK_EQ(evl_fs_watch_start(loop, "", 0, twatch, t, tfree, &w), -EINVAL);
    CHECK_EQ(evl_fs_watch_start(loop, "/tmp", 2, twatch, t, tfree, &w), -EINVAL);
    CHECK_EQ(evl_fs_watch_start(loop, "/tmp", 0, NULL, t, tfree, &w), -EINVAL);
    CHECK_EQ(evl_fs_watch_start(loop, "/tmp", 0, twatch, t, tfree, NULL), -EINVAL);
    CHECK_EQ(evl_fs_watch_start(loop, "/no/such/path/evloop", 0, twatch, t, tfree, &w), -ENOENT);
    CHECK(w == NULL);
    CHECK_EQ(evl_fs_watch_stop(loop, (evl_fs_watch *)t), -EINVAL);
    CHECK_EQ(evl_fs_watch_set_ref(loop, (evl_fs_watch *)t, 0), -EINVAL);
    CHECK_EQ(evl_getaddrinfo(loop, NULL, 80, taddrs, t, tfree), -EINVAL);
    CHECK_EQ(evl_getaddrinfo(loop, "", 80, taddrs, t, tfree), -EINVAL);
    CHECK_EQ(evl_getaddrinfo(loop, "localhost", 70000, taddrs, t, tfree), -EINVAL);
    CHECK_EQ(evl_getaddrinfo(loop, "localhost", 80, NULL, t, tfree), -EINVAL);
    CHECK_EQ(evl_getaddrinfo(NULL, "localhost", 80, taddrs, t, tfree), -EINVAL);
    CHECK_EQ(evl_getnameinfo(loop, NULL, 80, tnames, t, tfree), -EINVAL);
    CHECK_EQ(evl_getnameinfo(loop, "a name", 80, tnames, t, tfree), -ENXIO);
    CHECK_EQ(evl_getnameinfo(loop, "127.0.0.1", -1, tnames, t, tfree), -EINVAL);
    CHECK_EQ(evl_getnameinfo(loop, "127.0.0.1", 80, NULL, t, tfree), -EINVAL);
    FREED(t, 0);
    /* A live watcher: unref'd, stopped twice; its data freed once. */
    tok *live = tk("watch-live");
    CHECK_EQ(evl_fs_watch_start(loop, "/tmp", 0, twatch, live, tfree, &w), 0);
    CHECK_EQ(evl_fs_watch_set_ref(loop, w, 0), 0);
    CHECK_EQ(evl_is_alive(loop), 0);
    CHECK_EQ(evl_fs_watch_stop(loop, w), 0);
    CHECK_EQ(evl_fs_watch_stop(loop, w), -EINVAL);
    FREED(live, 1);
    /* localhost resolves (from /etc/hosts) to loopback addresses only. */
    tok *r = tk("getaddrinfo");
    resolved = -1;
    CHECK_EQ(evl_getaddrinfo(loop, "localhost", 80, taddrs, r, tfree), 0);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    CHECK(resolved >= 1);
    FREED(r, 1);
    /* A watcher still open when the loop is freed is freed with it. */
    tok *left = tk("watch-left-open");
    CHECK_EQ(evl_fs_watch_start(loop, "/tmp", 0, twatch, left, tfree, &w), 0);
    CHECK_EQ(evl_fs_watch_set_ref(loop, w, 0), 0);
    CHECK_EQ(evl_loop_free(loop), 0);
    FREED(left, 1);
}

/* ---- Files: bad paths, flags, modes, ids and buffers ---------------------- */

static void tdata(evl_loop *loop, ssize_t n, const char *buf, void *data) {
    (void)loop, (void)n, (void)buf;
    touch(data);
}
static void tpath(evl_loop *loop, int status, const char *path, void *data) {
    (void)loop, (void)status, (void)path;
    touch(data);
}
static void tstat(evl_loop *loop, int status, const evl_stat *st, void *data) {
    (void)loop, (void)status, (void)st;
    touch(data);
}
static void topen(evl_loop *loop, int status, uint64_t file, void *data) {
    (void)loop, (void)status, (void)file;
    touch(data);
}

static void test_fs_bad_input(void) {
    evl_loop *loop = new_loop();
    tok *t = tk("fs-never");
    const char *bad_paths[] = {NULL, ""};
    for (int i = 0; i < 2; i++) {
        const char *p = bad_paths[i];
        CHECK_EQ(evl_fs_read_file(loop, p, tdata, t, tfree), -EINVAL);
        CHECK_EQ(evl_fs_write_file(loop, p, "x", 1, tstatus, t, tfree), -EINVAL);
        CHECK_EQ(evl_fs_stat(loop, p, tstat, t, tfree), -EINVAL);
        CHECK_EQ(evl_fs_remove(loop, p, tstatus, t, tfree), -EINVAL);
        CHECK_EQ(evl_fs_rename(loop, p, "/tmp/x", tstatus, t, tfree), -EINVAL);
        CHECK_EQ(evl_fs_rename(loop, "/tmp/x", p, tstatus, t, tfree), -EINVAL);
        CHECK_EQ(evl_fs_copy(loop, p, "/tmp/x", tstatus, t, tfree), -EINVAL);
        CHECK_EQ(evl_fs_symlink(loop, "a", p, tstatus, t, tfree), -EINVAL);
        CHECK_EQ(evl_fs_readlink(loop, p, tpath, t, tfree), -EINVAL);
        CHECK_EQ(evl_fs_realpath(loop, p, tpath, t, tfree), -EINVAL);
        CHECK_EQ(evl_fs_chmod(loop, p, 0600, tstatus, t, tfree), -EINVAL);
        CHECK_EQ(evl_fs_mkdtemp(loop, p, tpath, t, tfree), -EINVAL);
        CHECK_EQ(evl_fs_open(loop, p, O_RDONLY, 0, topen, t, tfree), -EINVAL);
    }
    /* Required callbacks, a NULL loop, flags and modes. */
    CHECK_EQ(evl_fs_read_file(loop, "/tmp", NULL, t, tfree), -EINVAL);
    CHECK_EQ(evl_fs_stat(loop, "/tmp", NULL, t, tfree), -EINVAL);
    CHECK_EQ(evl_fs_open(loop, "/tmp/x", O_RDONLY, 0, NULL, t, tfree), -EINVAL);
    CHECK_EQ(evl_fs_read_file(NULL, "/tmp", tdata, t, tfree), -EINVAL);
    CHECK_EQ(evl_fs_open(loop, "/tmp/x", O_RDONLY | O_DIRECTORY, 0, topen, t, tfree), -EINVAL);
    CHECK_EQ(evl_fs_open(loop, "/tmp/x", O_ACCMODE, 0, topen, t, tfree), -EINVAL);
    CHECK_EQ(evl_fs_open(loop, "/tmp/x", O_RDWR | O_CREAT, 070000, topen, t, tfree), -EINVAL);
    CHECK_EQ(evl_fs_chmod(loop, "/tmp/x", 0xFFFFFFFFu, tstatus, t, tfree), -EINVAL);
    CHECK_EQ(evl_fs_write_file(loop, "/tmp/x", NULL, 5, tstatus, t, tfree), -EINVAL);
    CHECK_EQ(evl_fs_write_file(loop, "/tmp/x", "x", (size_t)-1, tstatus, t, tfree), -EINVAL);
    /* Ids that were never open. */
    uint64_t ids[] = {0, 1, 12345, UINT64_MAX};
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(evl_fs_read(loop, ids[i], 0, 1, tdata, t, tfree), -EBADF);
        CHECK_EQ(evl_fs_write(loop, ids[i], 0, "x", 1, tdata, t, tfree), -EBADF);
        CHECK_EQ(evl_fs_fstat(loop, ids[i], tstat, t, tfree), -EBADF);
        CHECK_EQ(evl_fs_fsync(loop, ids[i], tstatus, t, tfree), -EBADF);
        CHECK_EQ(evl_fs_ftruncate(loop, ids[i], 0, tstatus, t, tfree), -EBADF);
        CHECK_EQ(evl_fs_close(loop, ids[i], tstatus, t, tfree), -EBADF);
    }
    CHECK_EQ(evl_fs_read(loop, 1, 0, (size_t)-1, tdata, t, tfree), -EINVAL);
    CHECK_EQ(evl_fs_write(loop, 1, 0, NULL, 3, tdata, t, tfree), -EINVAL);
    FREED(t, 0);
    /* A job still queued when the loop is freed: its data is freed once, no
     * callback. An open file left open is closed with the loop. */
    tok *q = tk("fs-queued");
    CHECK_EQ(evl_fs_stat(loop, "/", tstat, q, tfree), 0);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    FREED(q, 1);
    CHECK_EQ(q->calls, 1);
    FREE_LOOP(loop);
}

static void test_diagnostics(void) {
    evl_metrics m;
    char buf[256];
    CHECK_EQ(evl_metrics_get(NULL, &m), -EINVAL);
    CHECK_EQ(evl_alive_report(NULL, buf, sizeof buf), -EINVAL);
    CHECK_EQ(evl_trace_start(NULL, "/tmp/x.json"), -EINVAL);
    CHECK_EQ(evl_trace_stop(NULL), -EINVAL);
    CHECK_EQ(evl_set_slow_callback_ms(NULL, 10), -EINVAL);

    evl_loop *loop = new_loop();
    CHECK_EQ(evl_metrics_get(loop, NULL), -EINVAL);
    CHECK_EQ(evl_alive_report(loop, NULL, 5), -EINVAL);
    ssize_t need = evl_alive_report(loop, NULL, 0);
    CHECK(need > 0);
    buf[0] = 'x';
    CHECK_EQ(evl_alive_report(loop, buf, 1), need);
    CHECK_EQ(buf[0], '\0');
    CHECK_EQ(evl_trace_start(loop, NULL), -EINVAL);
    CHECK_EQ(evl_trace_start(loop, ""), -EINVAL);
    CHECK_EQ(evl_trace_start(loop, "/nonexistent-dir/evloop/t.json"), -ENOENT);
    CHECK_EQ(evl_trace_stop(loop), 0);
    char path[64];
    snprintf(path, sizeof path, "/tmp/evloop-hostile-%d.json", (int)getpid());
    CHECK_EQ(evl_trace_start(loop, path), 0);
    CHECK_EQ(evl_trace_start(loop, path), -EEXIST);
    CHECK_EQ(evl_set_slow_callback_ms(loop, INT64_MAX), 0);
    CHECK_EQ(evl_set_slow_callback_ms(loop, INT64_MIN), 0);
    CHECK_EQ(evl_call_soon(loop, diag_in_callback, NULL, NULL), 0);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    CHECK_EQ(evl_metrics_get(loop, &m), 0);
    CHECK_EQ(m.ready_callbacks, 1);
    CHECK_EQ(evl_trace_stop(loop), 1);
    CHECK_EQ(evl_trace_stop(loop), 0);
    unlink(path);
    FREE_LOOP(loop);
}

int main(void) {
    alarm(300); /* a hang is a failure too */
    test_null_pointers();
    test_error_strings();
    test_stale_ids();
    test_huge_values();
    test_io_exists();
    test_inside_callbacks();
    test_nested_loops();
    test_work();
    test_gather();
    test_server_close_in_callback();
    test_connect_refused();
    test_stream_close_in_read();
    test_close_with_queued_writes();
    test_free_data_reenters_stream();
    test_free_data_reenters_core();
    test_free_data_rearms();
    test_loop_free_drops();
    test_diagnostics();
    test_udp();
    test_process();
    test_watch_dns();
    test_fs_bad_input();
    test_streams_bad_input();
    test_streams_inside_callbacks();
    in_child("huge write length", child_huge_write);
    in_child("free_data asks for the queue size", child_free_data_queue_size);
    in_child("evl_loop_free from free_data run by evl_loop_free", child_loop_free_in_teardown);
    in_child("evl_call_soon from free_data run by evl_loop_free", child_call_soon_in_teardown);
    in_child("evl_set_timeout from free_data run by evl_loop_free",
             child_set_timeout_in_teardown);

    /* Every token: free_data at most once, no callback after it. */
    for (int i = 0; i < ntokens; i++) {
        if (tokens[i].freed > 1 || tokens[i].late > 0) {
            failed++;
            fprintf(stderr, "token '%s': free_data ran %d times, %d callbacks after it\n",
                    tokens[i].name, tokens[i].freed, tokens[i].late);
        } else {
            passed++;
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
