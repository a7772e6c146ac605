/* A UDP echo server and a client in one loop on 127.0.0.1: the client sends
 * three datagrams, the server echoes each, the client prints what came back
 * and closes both sockets, so the loop ends. */
#include <stdio.h>
#include <string.h>

#include "evloop.h"

static evl_udp *server, *client;
static int replies;

static void on_server(evl_loop *loop, evl_udp *udp, ssize_t n, const char *buf,
                      const char *from_ip, int from_port, void *data) {
    (void)data;
    if (n < 0) {
        fprintf(stderr, "server: %s\n", evl_strerror((int)n));
        return;
    }
    /* Echo to the sender. */
    evl_udp_send(loop, udp, buf, (size_t)n, from_ip, from_port, NULL, NULL, NULL);
}

static void on_client(evl_loop *loop, evl_udp *udp, ssize_t n, const char *buf,
                      const char *from_ip, int from_port, void *data) {
    (void)udp;
    (void)from_ip;
    (void)from_port;
    (void)data;
    if (n < 0) {
        fprintf(stderr, "client: %s\n", evl_strerror((int)n));
        return;
    }
    printf("echo: %.*s\n", (int)n, buf);
    if (++replies == 3) {
        evl_udp_close(loop, client);
        evl_udp_close(loop, server);
    }
}

int main(void) {
    evl_loop *loop;
    char addr[80];
    if (evl_loop_new(&loop) < 0)
        return 1;
    if (evl_udp_bind(loop, "127.0.0.1", 0, 0, &server) < 0 ||
        evl_udp_bind(loop, "127.0.0.1", 0, 0, &client) < 0)
        return 1;
    evl_udp_local_addr(loop, server, addr, sizeof addr);
    int port = 0;
    sscanf(strrchr(addr, ':') + 1, "%d", &port);
    evl_udp_recv_start(loop, server, on_server, NULL, NULL);
    evl_udp_recv_start(loop, client, on_client, NULL, NULL);
    /* The client talks to one peer: connect, then send without an address. */
    evl_udp_connect(loop, client, "127.0.0.1", port);
    const char *words[] = {"one", "two", "three"};
    for (int i = 0; i < 3; i++)
        evl_udp_send(loop, client, words[i], strlen(words[i]), NULL, 0, NULL, NULL, NULL);
    if (evl_run(loop, EVL_RUN_DEFAULT) < 0)
        return 1;
    return evl_loop_free(loop) < 0;
}
