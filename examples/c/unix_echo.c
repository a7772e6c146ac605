/* A Unix socket echo server and its client in one program, plus a pipe.
 *
 *   ./unix_echo [PATH]
 *
 * Listens on PATH (default: a fresh socket file under /tmp), connects to it,
 * sends a line, prints the echo, then sends the same line through a pipe and
 * prints what came out. Prints:
 *   echo: hello over a unix socket
 *   pipe: hello over a unix socket */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evloop.h"

static const char line[] = "hello over a unix socket";
static evl_server *server;
static char got[64];

/* Server side: echo every chunk; at EOF close the client and the server. */
static void server_read(evl_loop *loop, evl_stream *client, ssize_t n, const char *buf, void *data) {
    (void)data;
    if (n > 0) {
        evl_stream_write(loop, client, buf, (size_t)n, NULL, NULL, NULL);
        return;
    }
    evl_stream_close(loop, client, NULL, NULL, NULL);
    evl_server_close(loop, server);
}

static void on_connection(evl_loop *loop, evl_server *srv, int status, evl_stream *client,
                          void *data) {
    (void)srv, (void)data;
    if (status == 0)
        evl_stream_read_start(loop, client, server_read, NULL, NULL);
}

/* Both clients (the socket and the pipe's read end) collect what they read
 * and print it at EOF; data is the label. */
static void client_read(evl_loop *loop, evl_stream *s, ssize_t n, const char *buf, void *data) {
    if (n > 0) {
        size_t room = sizeof got - strlen(got) - 1;
        strncat(got, buf, (size_t)n < room ? (size_t)n : room);
        return;
    }
    printf("%s: %s\n", (const char *)data, n == 0 ? got : evl_strerror((int)n));
    got[0] = 0;
    evl_stream_close(loop, s, NULL, NULL, NULL);
}

static void on_connect(evl_loop *loop, int status, evl_stream *s, void *data) {
    (void)data;
    if (status < 0) {
        fprintf(stderr, "connect: %s\n", evl_strerror(status));
        evl_server_close(loop, server);
        return;
    }
    evl_stream_write(loop, s, line, strlen(line), NULL, NULL, NULL);
    evl_stream_shutdown(loop, s, NULL, NULL, NULL); /* the server sees EOF */
    evl_stream_read_start(loop, s, client_read, "echo", NULL);
}

int main(int argc, char **argv) {
    char dir[] = "/tmp/evl-unix-echo-XXXXXX", path[128];
    if (argc > 1) {
        snprintf(path, sizeof path, "%s", argv[1]);
    } else if (mkdtemp(dir) != NULL) {
        snprintf(path, sizeof path, "%s/echo.sock", dir);
    } else {
        return 1;
    }
    evl_loop *loop;
    if (evl_loop_new(&loop) < 0)
        return 1;
    int rc = evl_unix_listen(loop, path, 16, on_connection, NULL, NULL, &server);
    if (rc == 0)
        rc = evl_unix_connect(loop, path, on_connect, NULL, NULL, NULL);
    if (rc == 0)
        rc = evl_run(loop, EVL_RUN_DEFAULT);

    /* A pipe: write the line into one end, shut it down, read the other. */
    evl_stream *r, *w;
    if (rc == 0)
        rc = evl_pipe(loop, &r, &w);
    if (rc == 0) {
        evl_stream_write(loop, w, line, strlen(line), NULL, NULL, NULL);
        evl_stream_shutdown(loop, w, NULL, NULL, NULL); /* closes it: EOF */
        evl_stream_read_start(loop, r, client_read, "pipe", NULL);
        rc = evl_run(loop, EVL_RUN_DEFAULT);
        evl_stream_close(loop, w, NULL, NULL, NULL); /* frees the write end */
        evl_run(loop, EVL_RUN_DEFAULT);
    }
    if (rc < 0)
        fprintf(stderr, "unix_echo: %s\n", evl_strerror(rc));
    unlink(path);
    if (argc <= 1)
        rmdir(dir);
    return evl_loop_free(loop) == 0 && rc == 0 ? 0 : 1;
}
