/* A TCP echo server in C: every byte a client sends comes back.
 *
 *   ./echo [PORT [MAX_CONNECTIONS]]
 *
 * Prints "listening on 127.0.0.1:PORT" (PORT 0 picks a free port). With
 * MAX_CONNECTIONS, the server stops listening after that many clients have
 * come and gone, and the program exits. */
#include <stdio.h>
#include <stdlib.h>

#include "evloop.h"

static evl_server *server;
static int served, max_clients;

static void closed(evl_loop *loop, void *data) {
    (void)data;
    if (max_clients > 0 && ++served == max_clients)
        evl_server_close(loop, server);
}

/* The client is done sending and got all its echo: close. */
static void shut_down(evl_loop *loop, int status, void *client) {
    (void)status;
    evl_stream_close(loop, client, closed, NULL, NULL);
}

static void on_read(evl_loop *loop, evl_stream *client, ssize_t nread,
                    const char *buf, void *data) {
    (void)data;
    if (nread > 0) {
        evl_stream_write(loop, client, buf, (size_t)nread, NULL, NULL, NULL);
    } else if (nread == 0) {
        /* EOF: flush the echo still queued, then close. */
        evl_stream_shutdown(loop, client, shut_down, client, NULL);
    } else {
        fprintf(stderr, "read: %s\n", evl_strerror((int)nread));
        evl_stream_close(loop, client, closed, NULL, NULL);
    }
}

static void on_connection(evl_loop *loop, evl_server *srv, int status,
                          evl_stream *client, void *data) {
    (void)srv;
    (void)data;
    if (status < 0) {
        fprintf(stderr, "accept: %s\n", evl_strerror(status));
        return;
    }
    evl_stream_read_start(loop, client, on_read, NULL, NULL);
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 7000;
    max_clients = argc > 2 ? atoi(argv[2]) : 0;
    evl_loop *loop;
    if (evl_loop_new(&loop) < 0)
        return 1;
    int rc = evl_tcp_listen(loop, "127.0.0.1", port, 128, on_connection, NULL, NULL, &server);
    if (rc < 0) {
        fprintf(stderr, "listen: %s\n", evl_strerror(rc));
        return 1;
    }
    printf("listening on 127.0.0.1:%d\n", evl_server_port(loop, server));
    fflush(stdout);
    rc = evl_run(loop, EVL_RUN_DEFAULT);
    if (rc < 0)
        fprintf(stderr, "run: %s\n", evl_strerror(rc));
    return evl_loop_free(loop) == 0 && rc == 0 ? 0 : 1;
}
