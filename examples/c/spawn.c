/* Spawns `echo` with its stdout piped to us, prints what it wrote and how
 * it ended. The output and the exit can arrive in either order; the loop
 * ends once both are in. */
#include <stdio.h>

#include "evloop.h"

static void on_output(evl_loop *loop, evl_stream *out, ssize_t n, const char *buf,
                      void *data) {
    (void)data;
    if (n > 0) {
        printf("child says: %.*s", (int)n, buf);
        return;
    }
    evl_stream_close(loop, out, NULL, NULL, NULL); /* EOF or an error */
}

static void on_exit_cb(evl_loop *loop, evl_process *p, int64_t status, int signal,
                       void *data) {
    (void)data;
    printf("exit status %lld, signal %d\n", (long long)status, signal);
    evl_process_close(loop, p); /* the handle is ours to free */
}

int main(void) {
    evl_loop *loop;
    if (evl_loop_new(&loop) < 0)
        return 1;
    const char *args[] = {"hello from a child", NULL};
    evl_process_options opts = {
        .file = "echo",
        .args = args,
        .stdio = {EVL_STDIO_IGNORE, EVL_STDIO_PIPE, EVL_STDIO_INHERIT},
    };
    evl_process *child;
    evl_stream *pipes[3];
    int rc = evl_spawn(loop, &opts, on_exit_cb, NULL, NULL, &child, pipes);
    if (rc < 0) {
        fprintf(stderr, "spawn: %s\n", evl_strerror(rc));
        return 1;
    }
    evl_stream_read_start(loop, pipes[1], on_output, NULL, NULL);
    if (evl_run(loop, EVL_RUN_DEFAULT) < 0)
        return 1;
    return evl_loop_free(loop) < 0;
}
