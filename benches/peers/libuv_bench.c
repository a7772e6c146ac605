/* libuv's side of the workload comparison (see benches/README.md).
 * Usage: libuv_bench W1 [n]. Prints one JSON line like benches/workloads.rs. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long peak_rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

static void report(const char *w, long n, double secs, const char *extra) {
    printf("{\"peer\":\"libuv\",\"workload\":\"%s\",\"n\":%ld,\"secs\":%.6f,\"rate\":%.0f,"
           "\"rss_kb\":%ld%s}\n", w, n, secs, n / secs, peak_rss_kb(), extra);
}

static uv_loop_t *loop;
static long n, count;

/* ---- W1: an idle handle runs once per pass until it ran n times. -------- */
static void idle_cb(uv_idle_t *h) {
    if (++count == n)
        uv_idle_stop(h);
}

/* ---- W2, W3, W4: timers (libuv has no run-soon queue: W2 uses 0 ms timers) */
static double base_ms, last_late_ms;
static void count_cb(uv_timer_t *t) { (void)t; count++; }
static void late_cb(uv_timer_t *t) {
    count++;
    last_late_ms = (double)uv_hrtime() / 1e6 - (base_ms + (double)(uintptr_t)t->data);
}

/* ---- W5, W5c: ping-pong over TCP in one loop ----------------------------- */
typedef struct { uv_tcp_t tcp; long left; long got; } conn_t;
typedef struct { uv_write_t req; char data[]; } write_t;
static uv_tcp_t server;
static long per_conn, open_conns;
static char readbuf[65536];
static double t0;

static void alloc_cb(uv_handle_t *h, size_t s, uv_buf_t *b) {
    (void)h; (void)s;
    *b = uv_buf_init(readbuf, sizeof readbuf);
}
static void free_handle(uv_handle_t *h) { free(h); }
static void write_done(uv_write_t *w, int status) { (void)status; free(w); }
static void send_bytes(uv_stream_t *s, const char *data, size_t len) {
    write_t *w = malloc(sizeof *w + len);
    memcpy(w->data, data, len);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    uv_write(&w->req, s, &b, 1, write_done);
}
static void echo_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b) {
    if (nread > 0)
        send_bytes(s, b->base, (size_t)nread);
    else if (nread < 0)
        uv_close((uv_handle_t *)s, free_handle);
}
static void on_connection(uv_stream_t *srv, int status) {
    if (status < 0)
        return;
    uv_tcp_t *c = malloc(sizeof *c);
    uv_tcp_init(loop, c);
    uv_tcp_nodelay(c, 1);
    uv_accept(srv, (uv_stream_t *)c);
    uv_read_start((uv_stream_t *)c, alloc_cb, echo_read);
}
static void client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b) {
    (void)b;
    conn_t *c = (conn_t *)s;
    if (nread <= 0)
        return;
    c->got += nread;
    while (c->got >= 5) {
        c->got -= 5;
        if (--c->left == 0) {
            uv_close((uv_handle_t *)s, free_handle);
            if (--open_conns == 0)
                uv_close((uv_handle_t *)&server, NULL);
            return;
        }
        send_bytes(s, "PING\n", 5);
    }
}
static void on_connect(uv_connect_t *req, int status) {
    conn_t *c = req->data;
    free(req);
    if (status < 0) {
        fprintf(stderr, "connect: %s\n", uv_strerror(status));
        exit(1);
    }
    if (t0 == 0)
        t0 = now_s();
    uv_read_start((uv_stream_t *)c, alloc_cb, client_read);
    send_bytes((uv_stream_t *)c, "PING\n", 5);
}
static void ping_pong(long total, long conns, const char *name) {
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    uv_tcp_init(loop, &server);
    uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
    uv_listen((uv_stream_t *)&server, 511, on_connection);
    int len = sizeof addr;
    uv_tcp_getsockname(&server, (struct sockaddr *)&addr, &len);
    per_conn = total / conns;
    open_conns = conns;
    for (long i = 0; i < conns; i++) {
        conn_t *c = calloc(1, sizeof *c);
        c->left = per_conn;
        uv_tcp_init(loop, &c->tcp);
        uv_tcp_nodelay(&c->tcp, 1);
        uv_connect_t *req = malloc(sizeof *req);
        req->data = c;
        uv_tcp_connect(req, &c->tcp, (const struct sockaddr *)&addr, on_connect);
    }
    uv_run(loop, UV_RUN_DEFAULT);
    char extra[64];
    snprintf(extra, sizeof extra, ",\"conns\":%ld", conns);
    report(name, per_conn * conns, now_s() - t0, extra);
}

/* ---- W6: another thread posts n callbacks: a locked queue + uv_async ---- */
typedef struct item { struct item *next; void (*fn)(void); } item_t;
static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static item_t *qhead, *qtail;
static uv_async_t async;
static void bump(void) { count++; }
static void drain(uv_async_t *a) {
    pthread_mutex_lock(&qlock);
    item_t *it = qhead;
    qhead = qtail = NULL;
    pthread_mutex_unlock(&qlock);
    while (it) {
        item_t *next = it->next;
        it->fn();
        free(it);
        it = next;
    }
    if (count == n)
        uv_close((uv_handle_t *)a, NULL);
}
static void *poster(void *arg) {
    (void)arg;
    for (long i = 0; i < n; i++) {
        item_t *it = malloc(sizeof *it);
        it->fn = bump;
        it->next = NULL;
        pthread_mutex_lock(&qlock);
        if (qtail) qtail->next = it; else qhead = it;
        qtail = it;
        pthread_mutex_unlock(&qlock);
        uv_async_send(&async);
    }
    return NULL;
}

int main(int argc, char **argv) {
    const char *w = argc > 1 ? argv[1] : "W1";
    long def = (!strcmp(w, "W5") || !strcmp(w, "W5c")) ? 100000 : 1000000;
    n = argc > 2 ? atol(argv[2]) : def;
    loop = uv_default_loop();
    if (!strcmp(w, "W1")) {
        uv_idle_t idle;
        uv_idle_init(loop, &idle);
        double t = now_s();
        uv_idle_start(&idle, idle_cb);
        uv_run(loop, UV_RUN_DEFAULT);
        report(w, n, now_s() - t, "");
    } else if (!strcmp(w, "W2")) {
        uv_timer_t *timers = malloc(sizeof *timers * (size_t)n);
        double t = now_s();
        for (long i = 0; i < n; i++) {
            uv_timer_init(loop, &timers[i]);
            uv_timer_start(&timers[i], count_cb, 0, 0);
        }
        uv_run(loop, UV_RUN_DEFAULT);
        report(w, n, now_s() - t, "");
    } else if (!strcmp(w, "W3")) {
        uv_timer_t *timers = malloc(sizeof *timers * (size_t)n);
        double t = now_s();
        uv_update_time(loop);
        base_ms = (double)uv_now(loop); /* uv_now counts ms of uv_hrtime() */
        for (long i = 0; i < n; i++) {
            uint64_t timeout = (uint64_t)(i / 1000 + 1);
            timers[i].data = (void *)(uintptr_t)timeout;
            uv_timer_init(loop, &timers[i]);
            uv_timer_start(&timers[i], late_cb, timeout, 0);
        }
        double setup = now_s() - t;
        double t2 = now_s();
        uv_run(loop, UV_RUN_DEFAULT);
        double run = now_s() - t2;
        char extra[160];
        snprintf(extra, sizeof extra,
                 ",\"setup_secs\":%.6f,\"run_secs\":%.6f,\"last_late_ms\":%.3f", setup, run,
                 last_late_ms);
        report(w, n, setup + run, extra);
    } else if (!strcmp(w, "W4")) {
        uv_timer_t *timers = malloc(sizeof *timers * (size_t)n);
        double t = now_s();
        for (long i = 0; i < n; i++) {
            uv_timer_init(loop, &timers[i]);
            uv_timer_start(&timers[i], count_cb, 10000, 0);
        }
        for (long i = 0; i < n; i++)
            uv_timer_stop(&timers[i]);
        uv_run(loop, UV_RUN_DEFAULT);
        report(w, n, now_s() - t, "");
    } else if (!strcmp(w, "W5")) {
        ping_pong(n, 1, w);
    } else if (!strcmp(w, "W5c")) {
        ping_pong(n, 100, w);
    } else if (!strcmp(w, "W6")) {
        uv_async_init(loop, &async, drain);
        pthread_t th;
        double t = now_s();
        pthread_create(&th, NULL, poster, NULL);
        uv_run(loop, UV_RUN_DEFAULT);
        pthread_join(th, NULL);
        report(w, n, now_s() - t, "");
    } else {
        fprintf(stderr, "unknown workload %s\n", w);
        return 2;
    }
    return 0;
}
