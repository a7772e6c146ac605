/* A C server whose process runs out of fds: the connection callback gets
 * -EMFILE once per episode (not once per pass), and the clients that waited
 * are served once fds are free again. Run by tests/c_api.rs; its own process,
 * since it lowers RLIMIT_NOFILE. Prints "N passed, N failed". */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "evloop.h"

#include "check.h"

enum { CLIENTS = 20, MAX_HELD = 4096 };

static int emfile_calls, other_errors, accepted, callbacks;
static evl_stream *conns[CLIENTS + 1];
static int held[MAX_HELD], nheld;

static void on_conn(evl_loop *loop, evl_server *server, int status,
                    evl_stream *client, void *data) {
    (void)loop, (void)server, (void)data;
    callbacks++;
    if (status == -EMFILE)
        emfile_calls++;
    else if (status < 0)
        other_errors++;
    else
        conns[accepted++] = client;
}

static void stop(evl_loop *loop, void *data) {
    (void)data;
    evl_stop(loop);
}

static void use_up_fds(void) {
    int fd;
    while (nheld < MAX_HELD && (fd = open("/dev/null", O_RDONLY)) >= 0)
        held[nheld++] = fd;
}

static void free_fds(void) {
    while (nheld > 0)
        close(held[--nheld]);
}

static int connect_client(int port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        perror("connect");
    return fd;
}

/* Runs the loop for ms of loop time. */
static void run_for(evl_loop *loop, uint64_t ms) {
    evl_timer_id t;
    evl_set_timeout(loop, ms, stop, NULL, NULL, &t);
    evl_run(loop, EVL_RUN_DEFAULT);
    evl_clear_timer(loop, t);
}

int main(void) {
    struct rlimit lim;
    getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = 64 + 3 * CLIENTS;
    setrlimit(RLIMIT_NOFILE, &lim);

    evl_loop *loop;
    evl_server *server;
    CHECK_EQ(evl_loop_new(&loop), 0);
    CHECK_EQ(evl_tcp_listen(loop, "127.0.0.1", 0, 128, on_conn, NULL, NULL, &server), 0);
    int port = evl_server_port(loop, server);
    int clients[CLIENTS + 1];
    for (int i = 0; i < CLIENTS; i++)
        clients[i] = connect_client(port);
    use_up_fds();

    run_for(loop, 300);
    CHECK_EQ(emfile_calls, 1); /* once per episode, not per pass */
    CHECK_EQ(accepted, 0);
    /* Paused with a backoff: a handful of retries, not 300,000 callbacks. */
    CHECK_EQ(callbacks, 1);

    free_fds();
    for (int i = 0; i < 200 && accepted < CLIENTS; i++)
        run_for(loop, 50);
    CHECK_EQ(accepted, CLIENTS);
    CHECK_EQ(emfile_calls, 1);

    /* A new episode is reported again. */
    clients[CLIENTS] = connect_client(port);
    use_up_fds();
    run_for(loop, 100);
    CHECK_EQ(emfile_calls, 2);
    free_fds();

    CHECK_EQ(other_errors, 0);
    for (int i = 0; i < accepted; i++)
        CHECK_EQ(evl_stream_close(loop, conns[i], NULL, NULL, NULL), 0);
    CHECK_EQ(evl_server_close(loop, server), 0); /* clears the retry timer */
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    CHECK_EQ(evl_loop_free(loop), 0);
    for (int i = 0; i <= CLIENTS; i++)
        close(clients[i]);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
