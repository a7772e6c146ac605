/*
 * evloop.h - the C API of evloop, a callback-based event loop.
 *
 * One thread runs a loop. You hand the loop work plus a callback (a timer, an
 * fd to watch, a job for the thread pool, a signal, a TCP connection); when
 * the work can proceed, the loop runs the callback on its own thread. evl_run
 * returns when nothing is left that could produce a callback.
 *
 * Conventions
 *   - Functions return 0 (or a documented positive value) on success and a
 *     negative errno value on failure: -EINVAL for NULL pointers, unknown
 *     ids, or out-of-range arguments. evl_strerror / evl_err_name describe
 *     any return value. No function ever crashes on bad arguments it can
 *     detect; a pointer that is not NULL must be one evloop gave you.
 *   - Every scheduling call takes `void *data` and an optional destructor
 *     `free_data` (may be NULL). free_data(data) is called exactly once: after
 *     the callback ran for the last time, or when the work is dropped (timer
 *     cleared, watcher stopped, stream closed, loop freed). A call that
 *     returns an error never runs its callback and never calls free_data.
 *     free_data may call evl_* functions like a callback may: evloop never
 *     calls it in the middle of its own work, but before the evl_* call that
 *     dropped the data returns, or (for data evloop drops itself, e.g. an
 *     interval cleared in its own callback) before the next callback runs or
 *     evl_run returns; work it adds is run by the same evl_run. During
 *     evl_loop_free it runs after the loop is gone: calls with that loop's
 *     pointer return -EINVAL.
 *   - No callback ever runs inside the call that scheduled it; only evl_run
 *     runs callbacks. Callbacks may call any evl_* function on their loop,
 *     except that evl_run and evl_loop_free on the running loop return -EBUSY.
 *   - A loop belongs to the thread that created it. Only evl_handle_post,
 *     evl_handle_free and the version/error functions may be called from
 *     other threads.
 *   - Rust panics never cross into C. If evloop hits an internal bug, the
 *     call returns -ENOTRECOVERABLE (functions returning void abort with a
 *     message on stderr instead).
 *   - Writes never raise SIGPIPE: a peer that is gone is -EPIPE in a write
 *     callback. (Making a pipe stream sets SIGPIPE to SIG_IGN if it was
 *     SIG_DFL.)
 *
 * Build: cargo build --release gives target/release/libevloop.a and
 * libevloop.so; `pkg-config --cflags --libs evloop` (see evloop.pc) gives the
 * compile line. Linking the static library needs:
 *   -lpthread -ldl -lm -lrt -lutil -lgcc_s -lc
 */
#ifndef EVLOOP_H
#define EVLOOP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Version ------------------------------------------------------------ */

#define EVL_VERSION_MAJOR 0
#define EVL_VERSION_MINOR 1
#define EVL_VERSION_PATCH 0
/* (major << 16) | (minor << 8) | patch, as evl_version() returns. */
#define EVL_VERSION_HEX \
    ((EVL_VERSION_MAJOR << 16) | (EVL_VERSION_MINOR << 8) | EVL_VERSION_PATCH)

/* The version of the library actually linked, as EVL_VERSION_HEX. */
unsigned evl_version(void);
/* The same as "major.minor.patch". Static storage; never free it. */
const char *evl_version_string(void);

/* ---- Types ---------------------------------------------------------------- */

typedef struct evl_loop evl_loop;
typedef struct evl_handle evl_handle;     /* thread-safe entry into a loop */
typedef struct evl_stream evl_stream;     /* a TCP, Unix socket or pipe stream */
typedef struct evl_server evl_server;     /* a listening TCP or Unix socket */
typedef struct evl_udp evl_udp;           /* a UDP socket */
typedef struct evl_process evl_process;   /* a child process */
typedef struct evl_fs_watch evl_fs_watch; /* a watched path */
/* Ids of timers, fd watchers and work. An id is never reused by its loop
 * (past 10^12 ids made, or 16.7 million live at once of one kind, a call
 * that would hand out one fails with -ENOSPC). Any other number, or an id of
 * something that ended, is stale: the calls answer 0 or -ENOENT as each
 * says. Ids are per kind: do not pass a timer id to an io function. */
typedef uint64_t evl_timer_id;
typedef uint64_t evl_io_id;
typedef uint64_t evl_work_id;
typedef uint64_t evl_signal_id;
typedef uint64_t evl_gather_id;

typedef void (*evl_cb)(evl_loop *loop, void *data);
typedef void (*evl_io_cb)(evl_loop *loop, int fd, int events, void *data);
typedef void (*evl_free_cb)(void *data);

enum { EVL_RUN_DEFAULT = 0, EVL_RUN_ONCE = 1, EVL_RUN_NOWAIT = 2 };
/* Watcher events. READABLE and WRITABLE are asked for; HANGUP and ERROR are
 * only reported to evl_io_cb. */
enum { EVL_READABLE = 1, EVL_WRITABLE = 2, EVL_HANGUP = 4, EVL_ERROR = 8 };

/* ---- Errors --------------------------------------------------------------- */

/* A message for a return value (0 or a negative errno). Static storage. */
const char *evl_strerror(int err);
/* The errno name of a return value ("EINVAL", "OK", "UNKNOWN"). Static. */
const char *evl_err_name(int err);

/* ---- The loop ------------------------------------------------------------- */

/* Makes a loop and stores it in *out. -EINVAL if out is NULL. */
int evl_loop_new(evl_loop **out);

/* Frees a loop: every pending callback is dropped (its free_data called once
 * the loop is gone: evl_* calls on it from there return -EINVAL), no
 * callback runs. -EBUSY while the loop is alive (see evl_is_alive: stop or
 * unref what keeps it alive first) or when called from its own callback. */
int evl_loop_free(evl_loop *loop);

/* Runs the loop.
 *   EVL_RUN_DEFAULT: until nothing is left (returns 0) or evl_stop (returns
 *                    1 if the loop is still alive).
 *   EVL_RUN_ONCE:    one pass, blocking for IO or timers if nothing is ready;
 *                    returns 1 if still alive, 0 if not.
 *   EVL_RUN_NOWAIT:  one pass that never blocks; 1 alive, 0 not.
 * -EINVAL for another mode; -EBUSY from inside a callback of this loop. */
int evl_run(evl_loop *loop, int mode);

/* Makes evl_run return at the end of the current pass, before it polls
 * again. Nothing is dropped; a later evl_run resumes. */
void evl_stop(evl_loop *loop);

/* The loop time in milliseconds since the loop was made: cached at the start
 * of each pass (0 for NULL). Timer deadlines count from it. */
uint64_t evl_now_ms(const evl_loop *loop);
/* Refreshes the cached loop time. */
void evl_update_time(evl_loop *loop);

/* 1 while anything could still produce a callback (a queued callback, a
 * timer, an active watcher, pool work, a live handle, unless unref'd), else 0. */
int evl_is_alive(const evl_loop *loop);

/* ---- Callbacks and timers ------------------------------------------------- */

/* Runs cb(loop, data) on a later pass. Callbacks run in the order queued; one
 * queued by a running callback waits for the next pass. */
int evl_call_soon(evl_loop *loop, evl_cb cb, void *data, evl_free_cb free_data);

/* Runs cb once, ms milliseconds after evl_now_ms(). Stores the timer's id in
 * *out if out is not NULL. Timers run in deadline order, ties in the order
 * set, never early. */
int evl_set_timeout(evl_loop *loop, uint64_t ms, evl_cb cb, void *data,
                    evl_free_cb free_data, evl_timer_id *out);
/* Runs cb every ms milliseconds until cleared; each period counts from the
 * loop time its call started, so a stall delays it rather than running it
 * twice in a pass. free_data runs when the interval is cleared. */
int evl_set_interval(evl_loop *loop, uint64_t ms, evl_cb cb, void *data,
                     evl_free_cb free_data, evl_timer_id *out);
/* The same with nanoseconds: evloop keeps full clock resolution. */
int evl_set_timeout_ns(evl_loop *loop, uint64_t ns, evl_cb cb, void *data,
                       evl_free_cb free_data, evl_timer_id *out);
int evl_set_interval_ns(evl_loop *loop, uint64_t ns, evl_cb cb, void *data,
                        evl_free_cb free_data, evl_timer_id *out);

/* Cancels a timer: 1 if it was pending (cleared, free_data called), 0 if not
 * (already ran, already cleared, unknown id). Ids are never reused. Clearing
 * an interval inside its own callback works; free_data runs after it. */
int evl_clear_timer(evl_loop *loop, evl_timer_id id);

/* keep_alive 0: the timer no longer keeps the loop alive (Node's unref());
 * 1: it does again. -ENOENT for a timer that is not pending. */
int evl_timer_set_ref(evl_loop *loop, evl_timer_id id, int keep_alive);

/* ---- fd watchers ---------------------------------------------------------- */

/* Watches an fd you own for events (EVL_READABLE | EVL_WRITABLE, or 0 to
 * register paused). cb gets the ready events, plus EVL_HANGUP / EVL_ERROR.
 * Level-triggered: cb runs again each pass while the fd stays ready. A
 * hang-up with nothing left to read is reported once; the watcher then
 * stops polling until evl_io_modify.
 * You must keep fd open until evl_io_stop (as libuv's uv_poll).
 * Errors: -EBADF (bad fd), -EPERM (a regular file or directory: not
 * pollable), -EEXIST (fd already watched by this loop), -EINVAL. */
int evl_io_start(evl_loop *loop, int fd, int events, evl_io_cb cb, void *data,
                 evl_free_cb free_data, evl_io_id *out);
/* Changes the events a watcher waits for. -ENOENT for an unknown id. */
int evl_io_modify(evl_loop *loop, evl_io_id id, int events);
/* Stops watching (free_data is called; inside the watcher's own callback,
 * after it returns). The fd is not closed. -ENOENT for an unknown id. */
int evl_io_stop(evl_loop *loop, evl_io_id id);
/* Sets whether the watcher keeps the loop alive. -ENOENT if unknown. */
int evl_io_set_ref(evl_loop *loop, evl_io_id id, int keep_alive);

/* ---- Other threads -------------------------------------------------------- */

/* A handle for posting callbacks from any thread. It keeps the loop alive
 * until freed (or unref'd). NULL if loop is NULL. */
evl_handle *evl_handle_new(evl_loop *loop);
/* From any thread: runs cb(loop, data) on the loop thread on a later pass
 * and wakes the loop if it is blocked. Posts from one thread run in order.
 * data may be used and freed on the loop thread. -ESHUTDOWN once the loop
 * was freed (then free_data is not called). */
int evl_handle_post(evl_handle *h, evl_cb cb, void *data, evl_free_cb free_data);
/* Sets whether this handle keeps the loop alive. Not concurrently with other
 * calls on the same handle. */
int evl_handle_set_ref(evl_handle *h, int keep_alive);
/* Frees a handle; any thread; NULL is ignored. */
void evl_handle_free(evl_handle *h);

/* ---- Embedding in another main loop --------------------------------------- */

/* An fd that becomes readable when the loop has IO or posts to process. Poll
 * it (with the timeout below) in your own loop, then call
 * evl_run(loop, EVL_RUN_NOWAIT). */
int evl_backend_fd(const evl_loop *loop);
/* Milliseconds until the loop needs evl_run again (rounded up); 0 if it has
 * work now; -1 if it needs no wake-up from time: only IO or another thread
 * can give it work, or nothing is alive (check evl_is_alive to stop driving
 * it). So poll(backend_fd, timeout) never spins. */
int evl_backend_timeout(const evl_loop *loop);

/* ---- Blocking work on the thread pool ------------------------------------ */

typedef void (*evl_work_cb)(void *data);                        /* pool thread */
typedef void (*evl_status_cb)(evl_loop *loop, int status, void *data);

/* Runs work(data) on the pool (4 threads, or EVLOOP_THREADPOOL_SIZE), then
 * done(loop, status, data) on the loop thread; status is 0, or -ECANCELED
 * if cancelled. done may be NULL. data is used on a pool thread, then on the
 * loop thread; free_data runs after done. Pending work keeps the loop alive. */
int evl_queue_work(evl_loop *loop, evl_work_cb work, evl_status_cb done,
                   void *data, evl_free_cb free_data, evl_work_id *out);
/* Cancels work that has not started: 0 (its done gets -ECANCELED later),
 * -EBUSY if it is running or finished, -ENOENT if unknown. */
int evl_cancel_work(evl_loop *loop, evl_work_id id);

/* ---- Signals -------------------------------------------------------------- */

typedef void (*evl_signal_cb)(evl_loop *loop, int signum, void *data);

/* Runs cb on the loop thread when signum (SIGINT, SIGTERM, SIGHUP, SIGUSR1,
 * ...) is delivered to the process. Several deliveries before the loop runs
 * may reach cb as one call. Does not keep the loop alive unless
 * evl_signal_set_ref(.., 1). -EINVAL for SIGKILL, SIGSTOP, SIGILL, SIGFPE, SIGSEGV,
 * 32 and 33 (the C library's) and non-signals; -ENOMEM past 64 watchers of
 * one signal in the process.
 * The handler the signal had keeps being called while it is watched. When the
 * last watcher of a signal stops, the signal is handled as if evloop had never
 * watched it: the previous disposition is back (SIGTERM kills again, an ignored
 * signal stays ignored), unless another handler was installed over evloop's
 * meanwhile (a library's that chains, as signal-hook does): that one is left
 * in place, and evloop's only passes the signal on. Watching SIGPIPE sets it
 * to "ignore" first if it was at its default action. */
int evl_signal_start(evl_loop *loop, int signum, evl_signal_cb cb, void *data,
                     evl_free_cb free_data, evl_signal_id *out);
/* Stops a signal watcher. -ENOENT if unknown. */
int evl_signal_stop(evl_loop *loop, evl_signal_id id);
int evl_signal_set_ref(evl_loop *loop, evl_signal_id id, int keep_alive);

/* ---- TCP ------------------------------------------------------------------ */

/* A new connection (status 0, client set) or an accept error (status < 0,
 * client NULL). The client stream is yours: close it with evl_stream_close. */
typedef void (*evl_connection_cb)(evl_loop *loop, evl_server *server, int status,
                                  evl_stream *client, void *data);
/* A connect finished: status 0 and the stream, or status < 0
 * (-ECONNREFUSED, ...) and NULL. */
typedef void (*evl_connect_cb)(evl_loop *loop, int status, evl_stream *stream,
                               void *data);
/* nread > 0: buf holds nread bytes (valid during the call only);
 * nread == 0: end of stream; nread < 0: an error (-ECONNRESET, ...).
 * Reading stops by itself after EOF or an error. */
typedef void (*evl_read_cb)(evl_loop *loop, evl_stream *stream, ssize_t nread,
                            const char *buf, void *data);

/* Listens on host and port (0: any free port, see evl_server_port), with
 * SO_REUSEADDR. host is an IP literal ("127.0.0.1", "::1", "0.0.0.0") or
 * "localhost" (127.0.0.1). Other names are not looked up (that would block
 * the loop on DNS): they give -ENXIO and a logged warning; resolve them
 * first. cb runs for each connection; accepted streams have TCP_NODELAY on.
 * Errors: -EINVAL (NULL, empty host, bad port), -ENXIO (a name), and the
 * errors of socket/bind/listen (-EADDRINUSE, -EADDRNOTAVAIL, ...). */
int evl_tcp_listen(evl_loop *loop, const char *ip, int port, int backlog,
                   evl_connection_cb cb, void *data, evl_free_cb free_data,
                   evl_server **out);
/* The port a TCP server listens on (-ENOTSUP for a Unix server). */
int evl_server_port(evl_loop *loop, evl_server *server);
/* Stops listening and frees the server (free_data is called). */
int evl_server_close(evl_loop *loop, evl_server *server);

/* Connects to host:port (an IP literal or "localhost", as for
 * evl_tcp_listen); cb runs on a later pass with the result. */
int evl_tcp_connect(evl_loop *loop, const char *ip, int port, evl_connect_cb cb,
                    void *data, evl_free_cb free_data);

/* Starts reading (replacing an earlier read callback, whose free_data runs). */
int evl_stream_read_start(evl_loop *loop, evl_stream *stream, evl_read_cb cb,
                          void *data, evl_free_cb free_data);
/* Stops reading; no read callback runs after it returns. */
int evl_stream_read_stop(evl_loop *loop, evl_stream *stream);

/* Copies len bytes and queues them. cb (may be NULL) runs on a later pass
 * with 0 once the OS took all of them, or a negative errno (-EPIPE: the peer
 * is gone; -ECANCELED: the stream was closed first). Writes complete in
 * order. Returns 1 if the queue is below its high water mark (64 KiB), 0 if
 * above (wait for earlier writes to complete before writing more), or a
 * negative errno (-ENOTCONN after close, -EPIPE after shutdown). */
int evl_stream_write(evl_loop *loop, evl_stream *stream, const void *buf,
                     size_t len, evl_status_cb cb, void *data,
                     evl_free_cb free_data);
/* Bytes queued and not yet taken by the OS; -EINVAL for a bad stream. */
ssize_t evl_stream_write_queue_size(evl_loop *loop, evl_stream *stream);
/* Half-close: once queued writes went out, ends the sending side and runs
 * cb(loop, status, data). Reading goes on. */
int evl_stream_shutdown(evl_loop *loop, evl_stream *stream, evl_status_cb cb,
                        void *data, evl_free_cb free_data);
/* Closes now: queued writes fail with -ECANCELED (their callbacks run), then
 * cb(loop, data) runs, after which the evl_stream pointer is invalid. */
int evl_stream_close(evl_loop *loop, evl_stream *stream, evl_cb cb, void *data,
                     evl_free_cb free_data);

/* ---- Diagnostics --------------------------------------------------------
 * Why the loop is alive, what is slow, metrics, a timeline. Callbacks set
 * through this C API are named by the C API's own source lines in reports;
 * kinds, ids and ref states are exact. */

/* What the loop has done so far (evl_metrics_get). Durations in ns. */
typedef struct evl_metrics {
    uint64_t iterations;        /* passes run */
    uint64_t timer_callbacks;   /* timer callbacks run */
    uint64_t ready_callbacks;   /* call_soon callbacks run */
    uint64_t io_callbacks;      /* watcher callbacks run */
    uint64_t posted_callbacks;  /* callbacks posted from other threads run */
    uint64_t io_events;         /* readiness events from the poller */
    uint64_t idle_time_ns;      /* time blocked in the poller (uv_metrics_idle_time) */
    uint64_t lag_max_ns;        /* how late timers ran after their deadline: max */
    uint64_t lag_p50_ns;        /* ... median (to 12.5 %) */
    uint64_t lag_p99_ns;        /* ... 99th percentile (to 12.5 %) */
} evl_metrics;

/* Copies the metrics to *out. 0, or -EINVAL for a NULL loop or out. */
int evl_metrics_get(evl_loop *loop, evl_metrics *out);

/* Writes the alive report (everything that keeps the loop alive: kind, id,
 * ref state, creation site, state; one line each) into buf as a
 * NUL-terminated string, truncated to len - 1 bytes. Returns the length of
 * the whole report (as snprintf: call with buf NULL and len 0 to size it), or
 * -EINVAL for a NULL loop, or a NULL buf with len > 0. */
ssize_t evl_alive_report(evl_loop *loop, char *buf, size_t len);

/* Starts recording a timeline to the file at path (Chrome trace-event JSON:
 * open it in https://ui.perfetto.dev or chrome://tracing): passes, polls and
 * callbacks. The file is complete after evl_trace_stop or evl_loop_free.
 * The environment variable EVLOOP_TRACE=path does the same for the first
 * loop of a process. Called from a callback, it records from the next pass
 * (callbacks already timed for the slow warning: from the next that ends).
 * 0; -EEXIST if a recording is on; -EINVAL for a NULL loop or an empty or
 * NULL path; the errno of creating the file. */
int evl_trace_start(evl_loop *loop, const char *path);
/* Stops the recording and completes the file: 1 stopped, 0 none was on, or
 * the negative errno of the first write that failed. */
int evl_trace_stop(evl_loop *loop);

/* Callbacks that run at least ms milliseconds log a warning (through Rust's
 * `log`, at warn: visible with a Rust logger only) naming their creation
 * site and duration. Default 100; a negative ms turns it off. Called from a
 * callback, turning the warning on or off applies from the next pass. 0, or
 * -EINVAL for a NULL loop. */
int evl_set_slow_callback_ms(evl_loop *loop, int64_t ms);

/* ---- Gather: one callback once several tasks are done ---------------------
 * C's form of evloop's gather (asyncio's gather, async.js's parallel): a
 * counter with a final callback. Start n tasks, give each the id; each calls
 * evl_gather_done once with its status (0 or a negative errno).
 *
 *     evl_gather_id g;
 *     evl_gather_new(loop, 3, all_done, ctx, free, &g);
 *     for (int i = 0; i < 3; i++) start_task(loop, g);  // each ends in
 *                                                       // evl_gather_done(loop, g, rc)
 *
 * done(loop, status, data) runs exactly once, on a later pass of the loop
 * (never inside evl_gather_done): with the first negative status as soon as
 * it arrives, or with 0 once all n reported 0. free_data runs after it (or
 * when the loop is freed first). A gather does not keep the loop alive: the
 * tasks that will report do. */

/* Makes a gather waiting for n dones. -EINVAL for n == 0, a NULL done or a
 * NULL loop (free_data is then not called). */
int evl_gather_new(evl_loop *loop, unsigned n, evl_status_cb done, void *data,
                   evl_free_cb free_data, evl_gather_id *out);
/* Reports one task's status: 0 for success, a negative errno for failure.
 * The dones after a failure are accepted (0) and change nothing. -EINVAL for
 * a positive status; -ENOENT for an unknown id, including one that already
 * had its n dones (a done called too often). */
int evl_gather_done(evl_loop *loop, evl_gather_id id, int status);
/* ==== Timers and callbacks: changing them later ============================ */

typedef uint64_t evl_soon_id;

/* Restarts a pending timer from the loop time: its deadline becomes
 * evl_now_ms() + its delay (a one-shot) or its period (an interval), as
 * libuv's uv_timer_again. -ENOENT if the timer is not pending. */
int evl_timer_refresh(evl_loop *loop, evl_timer_id id);
/* An interval's period, in *ms (rounded down) or *ns. -ENOENT if the timer
 * is not pending, -EINVAL for a one-shot timer or a NULL out pointer. */
int evl_timer_get_period(evl_loop *loop, evl_timer_id id, uint64_t *ms);
int evl_timer_get_period_ns(evl_loop *loop, evl_timer_id id, uint64_t *ns);
/* Changes an interval's period (uv_timer_set_repeat): the call already
 * queued keeps its deadline, the new period counts from the next re-arm on
 * (also when set from the interval's own callback); evl_timer_refresh
 * applies it at once. -ENOENT if not pending, -EINVAL for a one-shot. */
int evl_timer_set_period(evl_loop *loop, evl_timer_id id, uint64_t ms);
int evl_timer_set_period_ns(evl_loop *loop, evl_timer_id id, uint64_t ns);
/* Milliseconds from evl_now_ms() until the timer is due, rounded up (0:
 * due now or overdue); inside an interval's own callback, its period.
 * -ENOENT if the timer is not pending, -EINVAL for a NULL loop. */
int64_t evl_timer_due_in_ms(evl_loop *loop, evl_timer_id id);

/* As evl_call_soon, and stores an id in *out (if not NULL) with which
 * evl_cancel_soon takes the callback back before it runs (Node's
 * setImmediate / clearImmediate). */
int evl_call_soon_cancellable(evl_loop *loop, evl_cb cb, void *data,
                              evl_free_cb free_data, evl_soon_id *out);
/* 1 if the callback was still queued (it will not run; free_data is called
 * before this returns), 0 if not (it ran, was cancelled, or unknown id). */
int evl_cancel_soon(evl_loop *loop, evl_soon_id id);

/* ==== Streams of every kind ================================================= */
/* An evl_stream is a TCP connection, a Unix stream socket or a pipe (a pipe
 * end, FIFO, terminal or other stream-like fd). evl_stream_read_start,
 * _read_stop, _write, _write_queue_size, _shutdown and _close work on all
 * of them; a pipe that is not a socket cannot be half-closed, so
 * evl_stream_shutdown on a write-only pipe end closes it (its reader sees
 * EOF). A call made for another kind (evl_tcp_* on a pipe, evl_unix_* on
 * TCP) returns -ENOTSUP; a pointer that is not a live stream, -EINVAL. */

/* What an fd or stream is, as evl_guess_handle and evl_stream_kind say. */
enum {
    EVL_HANDLE_UNKNOWN = 0,       /* anything else (eventfd, datagram Unix socket...) */
    EVL_HANDLE_TCP = 1,           /* a connected TCP socket: evl_tcp_open */
    EVL_HANDLE_TCP_LISTENER = 2,  /* a listening TCP socket: evl_tcp_listen_fd */
    EVL_HANDLE_UNIX = 3,          /* a Unix stream socket: evl_unix_open */
    EVL_HANDLE_UNIX_LISTENER = 4, /* a listening Unix socket: evl_unix_listen_fd */
    EVL_HANDLE_UDP = 5,           /* a UDP socket */
    EVL_HANDLE_PIPE = 6,          /* a pipe or FIFO: evl_pipe_open */
    EVL_HANDLE_TTY = 7,           /* a terminal or other character device: evl_pipe_open */
    EVL_HANDLE_FILE = 8           /* a regular file or directory: not pollable */
};

typedef void (*evl_stream_cb)(evl_loop *loop, evl_stream *stream, void *data);

/* EVL_HANDLE_TCP, EVL_HANDLE_UNIX or EVL_HANDLE_PIPE. */
int evl_stream_kind(evl_loop *loop, evl_stream *stream);
/* Sets the write queue's water marks (low <= high, else -EINVAL):
 * evl_stream_write returns 0 while the queue is above high, and the drain
 * callback runs when it falls to low after it was above high. The default
 * is 64 KiB and 16 KiB. */
int evl_stream_set_water_marks(evl_loop *loop, evl_stream *stream, size_t high,
                               size_t low);
/* Sets the drain callback (see above), replacing the previous one (whose
 * free_data runs). cb may be NULL: that removes the callback, and this
 * call's free_data runs before it returns. free_data also runs when the
 * stream closes. -ENOTCONN once the stream is closed. */
int evl_stream_on_drain(evl_loop *loop, evl_stream *stream, evl_stream_cb cb,
                        void *data, evl_free_cb free_data);
/* Writes what the OS takes now, queueing nothing (uv_try_write): the number
 * of bytes written (maybe fewer than len), -EAGAIN if none could be written
 * or if writes are queued (writing around them would reorder the bytes),
 * -ENOTCONN after close, -EPIPE after shutdown, -EINVAL for bad arguments. */
ssize_t evl_stream_try_write(evl_loop *loop, evl_stream *stream, const void *buf,
                             size_t len);
/* Pauses reading and keeps the read callback (for backpressure): no read
 * callback runs until evl_stream_resume_reading. No-ops if not reading /
 * not paused. -ENOTCONN after close. */
int evl_stream_pause_reading(evl_loop *loop, evl_stream *stream);
int evl_stream_resume_reading(evl_loop *loop, evl_stream *stream);
/* keep_alive 0: the stream's reads and writes no longer keep the loop alive;
 * 1: they do again (the default). -ENOTCONN after close. */
int evl_stream_set_ref(evl_loop *loop, evl_stream *stream, int keep_alive);

/* ==== TCP extras ============================================================ */

typedef uint64_t evl_connect_id;

/* Room for any address evl_tcp_peer_addr writes, with its NUL. */
#define EVL_ADDRSTRLEN 80

/* Connects as evl_tcp_connect, optionally bound first to bind_ip:bind_port
 * (bind_ip NULL: not bound, bind_port must be 0; port 0 picks one) and
 * failing with -ETIMEDOUT after timeout_ms (0: no timeout). Stores the
 * request's id in *out (if not NULL) for evl_connect_cancel. Errors: as
 * evl_tcp_connect, and for the bind: -EADDRINUSE, -EADDRNOTAVAIL, -EINVAL
 * (the two addresses of different families). */
int evl_tcp_connect_ex(evl_loop *loop, const char *ip, int port,
                       const char *bind_ip, int bind_port, uint64_t timeout_ms,
                       evl_connect_cb cb, void *data, evl_free_cb free_data,
                       evl_connect_id *out);
/* Cancels a pending connect (TCP or Unix): its socket is closed now and its
 * callback runs on a later pass with -ECANCELED and NULL (whatever the
 * connect's outcome, if its callback had not run yet). -ENOENT once the
 * callback ran or is running, after an earlier cancel, or for an unknown
 * id. */
int evl_connect_cancel(evl_loop *loop, evl_connect_id id);

/* The stream's peer / local address as text into buf (size bytes):
 * "127.0.0.1:8080" or "[::1]:8080", NUL-terminated; returns its length.
 * -ENOBUFS if it does not fit (EVL_ADDRSTRLEN always does), -ENOTCONN
 * after close or when the peer is gone, -EINVAL for a NULL buf. */
int evl_tcp_peer_addr(evl_loop *loop, evl_stream *stream, char *buf, size_t size);
int evl_tcp_local_addr(evl_loop *loop, evl_stream *stream, char *buf, size_t size);
/* TCP_NODELAY on (1, the default for evloop's streams) or off (0). */
int evl_tcp_set_nodelay(evl_loop *loop, evl_stream *stream, int enable);
/* Keepalive probes after delay_s seconds of silence (1..32767, else
 * -EINVAL), or off (enable 0; delay_s ignored). */
int evl_tcp_set_keepalive(evl_loop *loop, evl_stream *stream, int enable,
                          unsigned delay_s);
/* As evl_stream_close, with a reset (RST) instead of a graceful FIN
 * (uv_tcp_close_reset): unsent data is dropped and the peer's next read or
 * write fails with -ECONNRESET. cb may be NULL. -ENOTCONN if closed. */
int evl_tcp_close_reset(evl_loop *loop, evl_stream *stream, evl_cb cb,
                        void *data, evl_free_cb free_data);

/* ==== Unix sockets and pipes ================================================ */

/* Listens on the socket file path (which must not exist: -EADDRINUSE), as
 * evl_tcp_listen does; the file is not removed on close. A path longer
 * than a socket address holds (107 bytes) is -EINVAL. */
int evl_unix_listen(evl_loop *loop, const char *path, int backlog,
                    evl_connection_cb cb, void *data, evl_free_cb free_data,
                    evl_server **out);
/* The path a Unix server listens on, as evl_tcp_peer_addr writes text: its
 * length, -ENOBUFS if it does not fit; -ENOTSUP for a TCP server.
 * (evl_server_port gives -ENOTSUP for a Unix server.) */
int evl_server_path(evl_loop *loop, evl_server *server, char *buf, size_t size);
/* Connects to the socket file path; cb runs on a later pass with the
 * stream, or -ENOENT, -ECONNREFUSED, -EAGAIN (the listener's backlog is
 * full). The request's id goes to *out if not NULL (evl_connect_cancel). */
int evl_unix_connect(evl_loop *loop, const char *path, evl_connect_cb cb,
                     void *data, evl_free_cb free_data, evl_connect_id *out);
/* A connected pair of Unix stream sockets (socketpair). */
int evl_unix_pair(evl_loop *loop, evl_stream **a, evl_stream **b);

/* Queues buf (len >= 1 bytes: fds travel with data) with the fds passed
 * along (SCM_RIGHTS, at most 253): the peer gets new fds for them with the
 * first byte of buf. The fds stay yours, as with sendmsg: evloop sends
 * duplicates (made before this returns), so close yours when you like.
 * cb (may be NULL) and the return value are as evl_stream_write's. -EBADF
 * for an fd that is not open, -ENOTSUP for a stream that is not a Unix
 * socket, -EINVAL for len 0 or more than 253 fds. */
int evl_unix_write_fds(evl_loop *loop, evl_stream *stream, const void *buf,
                       size_t len, const int *fds, size_t nfds,
                       evl_status_cb cb, void *data, evl_free_cb free_data);
/* on 1: accept fds the peer passes (libuv's IPC pipes); 0 (the default):
 * the kernel closes them, so a peer cannot make us hold fds. With it on, up
 * to 1,024 wait for evl_unix_take_fds; more are closed (a warning is
 * logged). -ENOTSUP for a stream that is not a Unix socket. */
int evl_unix_receive_fds(evl_loop *loop, evl_stream *stream, int on);
/* Number of received fds not taken yet. Take them in the read callback
 * that got the bytes they came with; those never taken are closed with the
 * stream. */
int evl_unix_pending_fds(evl_loop *loop, evl_stream *stream);
/* Moves the received fds (close-on-exec, now yours) into fds, oldest first,
 * and returns their number (0: none). -ENOBUFS, taking none, if max is
 * less than evl_unix_pending_fds. */
int evl_unix_take_fds(evl_loop *loop, evl_stream *stream, int *fds, size_t max);

/* An anonymous pipe as two streams: read from *read_end, write to
 * *write_end (evl_stream_shutdown on it closes it: the reader sees EOF). */
int evl_pipe(evl_loop *loop, evl_stream **read_end, evl_stream **write_end);

/* ==== Opening fds made elsewhere ============================================ */
/* The calls below take over fd on success (made non-blocking; the stream
 * or server closes it). On error the fd stays yours and open. They answer
 * -EBADF for an fd that is not open, -EINVAL for one of another kind (see
 * evl_guess_handle) or the loop's own evl_backend_fd. */

/* What fd is: an EVL_HANDLE_* kind (uv_guess_handle), or -EBADF. */
int evl_guess_handle(int fd);
/* A pipe end, FIFO, terminal or other stream-like fd that is not a socket,
 * as a stream. -EPERM for a regular file or directory (not pollable),
 * -EINVAL for a socket (use evl_tcp_open / evl_unix_open). */
int evl_pipe_open(evl_loop *loop, int fd, evl_stream **out);
/* A connected TCP socket / Unix stream socket, as a stream. */
int evl_tcp_open(evl_loop *loop, int fd, evl_stream **out);
int evl_unix_open(evl_loop *loop, int fd, evl_stream **out);
/* A listening TCP / Unix socket, served as evl_tcp_listen / evl_unix_listen
 * serve theirs (cb must not be NULL). */
int evl_tcp_listen_fd(evl_loop *loop, int fd, evl_connection_cb cb, void *data,
                      evl_free_cb free_data, evl_server **out);
int evl_unix_listen_fd(evl_loop *loop, int fd, evl_connection_cb cb, void *data,
                       evl_free_cb free_data, evl_server **out);

/* ---- UDP ------------------------------------------------------------------
 * libuv's uv_udp_*. Hosts are IP literals or "localhost" (as for
 * evl_tcp_listen); a datagram's sender is given as an IP literal and a
 * port, as evl_udp_send takes them. */

enum { EVL_UDP_REUSEADDR = 1, EVL_UDP_REUSEPORT = 2 };

/* nread > 0: a datagram of nread bytes from from_ip ("127.0.0.1", "::1";
 * no brackets) and from_port; nread == 0: an empty datagram (from_ip set);
 * nread < 0: an error reported by the socket (an ICMP "port unreachable"
 * for a connected socket is -ECONNREFUSED), from_ip NULL and from_port 0.
 * buf and from_ip are valid during the call only. */
typedef void (*evl_udp_recv_cb)(evl_loop *loop, evl_udp *udp, ssize_t nread,
                                const char *buf, const char *from_ip, int from_port,
                                void *data);

/* Binds a UDP socket to host:port (port 0: any free port). flags: 0 or
 * EVL_UDP_REUSEADDR | EVL_UDP_REUSEPORT (several sockets on one port).
 * -EINVAL (NULL, bad port or flags), -ENXIO (a name), -EADDRINUSE, ... */
int evl_udp_bind(evl_loop *loop, const char *host, int port, int flags, evl_udp **out);
/* The bound address as "ip:port" in buf (NUL-terminated): its length, or
 * -ENOBUFS if size is too small. */
int evl_udp_local_addr(evl_loop *loop, evl_udp *udp, char *buf, size_t size);
/* Associates the socket with one peer (uv_udp_connect): sends without an
 * address go there and datagrams from others are dropped by the kernel.
 * host NULL disconnects. -EISCONN if connected already, -ENOTCONN when
 * disconnecting an unconnected socket. */
int evl_udp_connect(evl_loop *loop, evl_udp *udp, const char *host, int port);
/* Queues a datagram (copied) to host:port, or to the connected peer if host
 * is NULL (-EDESTADDRREQ if there is none). cb (may be NULL) gets 0 or the
 * error on a later pass; free_data runs after it. */
int evl_udp_send(evl_loop *loop, evl_udp *udp, const void *buf, size_t len,
                 const char *host, int port, evl_status_cb cb, void *data,
                 evl_free_cb free_data);
/* Sends now or fails: the bytes sent, -EAGAIN if it would block or sends are
 * queued (uv_udp_try_send). host NULL: the connected peer. */
ssize_t evl_udp_try_send(evl_loop *loop, evl_udp *udp, const void *buf, size_t len,
                         const char *host, int port);
/* Starts receiving: cb runs for each datagram until evl_udp_recv_stop or
 * close (then free_data). Replaces an earlier callback, whose free_data
 * runs at once, or once it has returned if this is called from inside it
 * (evl_udp_close inside the callback likewise). cb must not be NULL. */
int evl_udp_recv_start(evl_loop *loop, evl_udp *udp, evl_udp_recv_cb cb, void *data,
                       evl_free_cb free_data);
int evl_udp_recv_stop(evl_loop *loop, evl_udp *udp);
/* Whether the socket keeps the loop alive while receiving (1, the default). */
int evl_udp_set_ref(evl_loop *loop, evl_udp *udp, int keep_alive);
int evl_udp_set_broadcast(evl_loop *loop, evl_udp *udp, int on);
/* IPv4 multicast: join (1) or leave (0) group (a literal) on interface (a
 * literal, or NULL for any); the TTL (0-255) and loopback of sent packets. */
int evl_udp_set_membership(evl_loop *loop, evl_udp *udp, const char *group,
                           const char *interface, int join);
int evl_udp_set_multicast_ttl(evl_loop *loop, evl_udp *udp, int ttl);
int evl_udp_set_multicast_loop(evl_loop *loop, evl_udp *udp, int on);
/* Closes and frees the socket now: no receive callback runs after this;
 * sends still queued get -ECANCELED on a later pass. -EINVAL for a stale
 * pointer (closing twice). */
int evl_udp_close(evl_loop *loop, evl_udp *udp);

/* ---- Child processes ------------------------------------------------------
 * libuv's uv_spawn. The child is reaped by evloop; its exit callback runs on
 * the loop thread. */

enum { EVL_STDIO_INHERIT = 0, EVL_STDIO_IGNORE = 1, EVL_STDIO_PIPE = 2 };
enum { EVL_PROCESS_DETACHED = 1, EVL_PROCESS_SETUID = 2, EVL_PROCESS_SETGID = 4 };

typedef struct evl_process_options {
    const char *file;        /* the program, looked up in PATH; required */
    const char *const *args; /* its arguments after argv[0], NULL-terminated;
                              * NULL: none */
    const char *const *env;  /* "NAME=value" entries, NULL-terminated: the
                              * whole environment; NULL: inherit ours */
    const char *cwd;         /* NULL: our working directory */
    int stdio[3];            /* EVL_STDIO_* for stdin, stdout, stderr */
    int flags;               /* EVL_PROCESS_DETACHED: a new session, not
                              * killed with our process group; SETUID/SETGID:
                              * run as uid/gid (root only: else -EPERM) */
    uint32_t uid, gid;
    const int *fds;          /* extra fds: fds[i] becomes the child's fd 3 + i
                              * (a duplicate: ours stay ours, as libuv's
                              * UV_INHERIT_FD); -1 puts nothing there (it is
                              * closed unless one of our fds without
                              * close-on-exec has that number). NULL: none */
    int fd_count;            /* entries in fds, 0 to 1024 */
} evl_process_options;

/* exit_status: the exit code (0 if killed); term_signal: the signal that
 * ended it, or 0. */
typedef void (*evl_exit_cb)(evl_loop *loop, evl_process *process, int64_t exit_status,
                            int term_signal, void *data);

/* Starts a child. cb (may be NULL) runs once it has ended. The process
 * handle stays valid, also after the exit, until evl_process_close (or the
 * loop is freed); free_data runs then. Close it, typically in cb. pipes: for each EVL_STDIO_PIPE slot, an
 * evl_stream for the parent's end (stdin writable, stdout/stderr readable),
 * NULL for the others; it may be NULL when no slot is a pipe. A program that
 * cannot be started is an error here (-ENOENT, -EACCES, ...) and cb never
 * runs. -EINVAL for NULLs, an empty file, a bad stdio mode or flag, an env
 * entry without '=', a bad fd_count (or fds NULL with a count); -EBADF for
 * an entry of fds that is not an open fd (nor -1); -E2BIG for more than
 * 65,536 arguments. */
int evl_spawn(evl_loop *loop, const evl_process_options *options, evl_exit_cb cb,
              void *data, evl_free_cb free_data, evl_process **out, evl_stream *pipes[3]);
/* The child's pid. */
int evl_process_pid(evl_loop *loop, evl_process *process);
/* Sends signum (0 probes). -ESRCH once the child was reaped. */
int evl_process_kill(evl_loop *loop, evl_process *process, int signum);
/* Whether the loop waits for the child (1, the default) or not. */
int evl_process_set_ref(evl_loop *loop, evl_process *process, int keep_alive);
/* Frees the handle (libuv's uv_close on a process): free_data runs, and cb
 * no longer runs if the child has not exited yet (the child itself is not
 * signalled, and is still reaped). -EINVAL for a stale pointer. */
int evl_process_close(evl_loop *loop, evl_process *process);
/* kill(2) for any pid (uv_kill): -EINVAL for a bad signal, -ESRCH, -EPERM. */
int evl_kill(int pid, int signum);

/* ---- Watching paths -------------------------------------------------------
 * libuv's uv_fs_event_*, with inotify. Events name the file relative to the
 * watched directory (for a watched file, its name; "" for the watched
 * directory itself). */

enum { EVL_FS_WATCH_RECURSIVE = 1 };
enum {
    EVL_FS_CREATED = 1, EVL_FS_MODIFIED = 2, EVL_FS_METADATA = 3, EVL_FS_REMOVED = 4,
    EVL_FS_RENAMED = 5,    /* path was renamed to `to` */
    EVL_FS_MOVED_OUT = 6,  /* moved out of the watched tree (or the other half
                            * of a rename was not seen) */
    EVL_FS_MOVED_IN = 7,
    EVL_FS_SELF_REMOVED = 8, EVL_FS_SELF_MOVED = 9, /* the watch has ended */
    EVL_FS_OVERFLOW = 10   /* the kernel's queue overflowed: events were lost */
};

/* path and to (NULL unless EVL_FS_RENAMED) are valid during the call only. */
typedef void (*evl_fs_watch_cb)(evl_loop *loop, evl_fs_watch *watch, int event,
                                const char *path, const char *to, int is_dir, void *data);

/* Watches a file or directory (flags 0 or EVL_FS_WATCH_RECURSIVE: also every
 * directory below, including ones made later). -ENOENT for a missing path,
 * -EINVAL for NULLs, an empty path or other flags. */
int evl_fs_watch_start(evl_loop *loop, const char *path, int flags, evl_fs_watch_cb cb,
                       void *data, evl_free_cb free_data, evl_fs_watch **out);
/* Stops and frees the watcher (free_data runs); no callback runs after this,
 * even inside the watcher's own callback. -EINVAL for a stale pointer. */
int evl_fs_watch_stop(evl_loop *loop, evl_fs_watch *watch);
/* Whether the watcher keeps the loop alive (1, the default). -ENOENT once
 * the watch has ended (its path was removed or moved). */
int evl_fs_watch_set_ref(evl_loop *loop, evl_fs_watch *watch, int keep_alive);

/* ---- Name resolution (on the pool) -----------------------------------------
 * getaddrinfo / getnameinfo on the thread pool; cb runs on the loop thread. */

/* addrs: count addresses as "ip:port" text (valid during the call). status
 * is 0 or a negative errno; every resolver failure (unknown name, no
 * server, try again) is -EIO: the resolver's own EAI_* code is not kept. */
typedef void (*evl_getaddrinfo_cb)(evl_loop *loop, int status, const char *const *addrs,
                                   size_t count, void *data);
/* host and service are valid during the call; NULL when status < 0. */
typedef void (*evl_getnameinfo_cb)(evl_loop *loop, int status, const char *host,
                                   const char *service, void *data);

/* Resolves host (a name or an IP literal) with port. -EINVAL for NULLs, an
 * empty host or a bad port. */
int evl_getaddrinfo(evl_loop *loop, const char *host, int port, evl_getaddrinfo_cb cb,
                    void *data, evl_free_cb free_data);
/* The name of ip:port (ip is a literal), as getnameinfo with NI_NAMEREQD:
 * an address with no name is an error, never the digits. */
int evl_getnameinfo(evl_loop *loop, const char *ip, int port, evl_getnameinfo_cb cb,
                    void *data, evl_free_cb free_data);

/* ---- Files (on the pool) --------------------------------------------------
 * libuv's uv_fs_*: each call queues a job and returns 0 (or a negative
 * errno, and then its callback never runs); the callback runs on the loop
 * thread, then free_data. Status callbacks (evl_status_cb) may be NULL.
 * Open files are uint64_t ids, stale after evl_fs_close (-EBADF then). */

typedef struct evl_stat {
    uint64_t size;
    int64_t mtime_ns; /* since the epoch */
    uint32_t mode;    /* st_mode: type and permission bits */
    uint32_t uid, gid, nlink;
} evl_stat;

/* result: bytes (buf valid during the call), or a negative errno. */
typedef void (*evl_fs_data_cb)(evl_loop *loop, ssize_t result, const char *buf, void *data);
/* path valid during the call; NULL when status < 0. */
typedef void (*evl_fs_path_cb)(evl_loop *loop, int status, const char *path, void *data);
/* st valid during the call; NULL when status < 0. */
typedef void (*evl_fs_stat_cb)(evl_loop *loop, int status, const evl_stat *st, void *data);
typedef void (*evl_fs_open_cb)(evl_loop *loop, int status, uint64_t file, void *data);

/* Whole files: read all of it; replace it atomically (temp file, fsync,
 * rename). buf is copied before evl_fs_write_file returns. */
int evl_fs_read_file(evl_loop *loop, const char *path, evl_fs_data_cb cb, void *data,
                     evl_free_cb free_data);
int evl_fs_write_file(evl_loop *loop, const char *path, const void *buf, size_t len,
                      evl_status_cb cb, void *data, evl_free_cb free_data);
/* Paths: stat (following links), remove (a file or an empty directory),
 * rename, copy (overwrites, copies the mode), symlink, readlink, realpath,
 * chmod (mode <= 07777), mkdtemp (prefix + 6 random characters). */
int evl_fs_stat(evl_loop *loop, const char *path, evl_fs_stat_cb cb, void *data,
                evl_free_cb free_data);
int evl_fs_remove(evl_loop *loop, const char *path, evl_status_cb cb, void *data,
                  evl_free_cb free_data);
int evl_fs_rename(evl_loop *loop, const char *from, const char *to, evl_status_cb cb,
                  void *data, evl_free_cb free_data);
int evl_fs_copy(evl_loop *loop, const char *from, const char *to, evl_status_cb cb,
                void *data, evl_free_cb free_data);
int evl_fs_symlink(evl_loop *loop, const char *target, const char *link, evl_status_cb cb,
                   void *data, evl_free_cb free_data);
int evl_fs_readlink(evl_loop *loop, const char *path, evl_fs_path_cb cb, void *data,
                    evl_free_cb free_data);
int evl_fs_realpath(evl_loop *loop, const char *path, evl_fs_path_cb cb, void *data,
                    evl_free_cb free_data);
int evl_fs_chmod(evl_loop *loop, const char *path, uint32_t mode, evl_status_cb cb,
                 void *data, evl_free_cb free_data);
int evl_fs_mkdtemp(evl_loop *loop, const char *prefix, evl_fs_path_cb cb, void *data,
                   evl_free_cb free_data);

/* Open files. flags: O_RDONLY, O_WRONLY or O_RDWR, with O_CREAT, O_TRUNC,
 * O_APPEND, O_EXCL (others: -EINVAL); mode for O_CREAT (<= 07777). */
int evl_fs_open(evl_loop *loop, const char *path, int flags, uint32_t mode,
                evl_fs_open_cb cb, void *data, evl_free_cb free_data);
/* Reads up to len bytes at offset (fewer only at the end of the file). */
int evl_fs_read(evl_loop *loop, uint64_t file, uint64_t offset, size_t len,
                evl_fs_data_cb cb, void *data, evl_free_cb free_data);
/* Writes all of buf (copied) at offset; cb (may be NULL) gets the count. */
int evl_fs_write(evl_loop *loop, uint64_t file, uint64_t offset, const void *buf,
                 size_t len, evl_fs_data_cb cb, void *data, evl_free_cb free_data);
int evl_fs_fstat(evl_loop *loop, uint64_t file, evl_fs_stat_cb cb, void *data,
                 evl_free_cb free_data);
int evl_fs_fsync(evl_loop *loop, uint64_t file, evl_status_cb cb, void *data,
                 evl_free_cb free_data);
int evl_fs_ftruncate(evl_loop *loop, uint64_t file, uint64_t len, evl_status_cb cb,
                     void *data, evl_free_cb free_data);
/* Closes the file (on the pool, after the jobs started before it); the id
 * is stale at once. -EBADF for an id that is not open. */
int evl_fs_close(evl_loop *loop, uint64_t file, evl_status_cb cb, void *data,
                 evl_free_cb free_data);

#ifdef __cplusplus
}
#endif

#endif /* EVLOOP_H */
