/* evl_gather_new / evl_gather_done from C: the final callback runs once,
 * through the loop, with 0 or the first error; free_data once after it.
 * Follows async.js test/parallel.js ('parallel', 'parallel error') in C.
 * Run by tests/c_api.rs; ends with "N passed, M failed". */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "evloop.h"

#include "check.h"

typedef struct {
    int calls;     /* final callback calls */
    int status;    /* its status */
    int freed;     /* free_data calls */
    int late;      /* final callback after free_data */
    int inside;    /* set while evl_gather_done runs: must never be seen */
    evl_gather_id id;
    int order[8];  /* which task finished when */
    int finished;
} gather_state;

static void final_cb(evl_loop *loop, int status, void *data) {
    (void)loop;
    gather_state *g = data;
    CHECK_EQ(g->inside, 0);
    g->calls++;
    g->status = status;
    if (g->freed)
        g->late++;
}

static void free_state(void *data) {
    ((gather_state *)data)->freed++;
}

/* A task: a timer whose callback reports one status. */
typedef struct {
    gather_state *g;
    int index;
    int status;
} task;

static void task_done(evl_loop *loop, void *data) {
    task *t = data;
    t->g->order[t->g->finished++] = t->index;
    t->g->inside = 1;
    CHECK_EQ(evl_gather_done(loop, t->g->id, t->status), 0);
    t->g->inside = 0;
}

static void test_all_ok_in_any_order(void) {
    evl_loop *loop = NULL;
    CHECK_EQ(evl_loop_new(&loop), 0);
    gather_state g;
    memset(&g, 0, sizeof g);
    CHECK_EQ(evl_gather_new(loop, 3, final_cb, &g, free_state, &g.id), 0);
    task tasks[3] = {{&g, 1, 0}, {&g, 2, 0}, {&g, 3, 0}};
    uint64_t ms[3] = {30, 50, 10};
    for (int i = 0; i < 3; i++)
        CHECK_EQ(evl_set_timeout(loop, ms[i], task_done, &tasks[i], NULL, NULL), 0);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    CHECK_EQ(g.order[0], 3);
    CHECK_EQ(g.order[1], 1);
    CHECK_EQ(g.order[2], 2);
    CHECK_EQ(g.calls, 1);
    CHECK_EQ(g.status, 0);
    CHECK_EQ(g.freed, 1);
    CHECK_EQ(g.late, 0);
    /* All n dones arrived: the id is gone. */
    CHECK_EQ(evl_gather_done(loop, g.id, 0), -ENOENT);
    CHECK_EQ(evl_loop_free(loop), 0);
}

static void test_first_error_wins_once(void) {
    evl_loop *loop = NULL;
    CHECK_EQ(evl_loop_new(&loop), 0);
    gather_state g;
    memset(&g, 0, sizeof g);
    CHECK_EQ(evl_gather_new(loop, 3, final_cb, &g, free_state, &g.id), 0);
    task tasks[3] = {{&g, 1, -EIO}, {&g, 2, -EPIPE}, {&g, 3, 0}};
    uint64_t ms[3] = {10, 20, 30};
    for (int i = 0; i < 3; i++)
        CHECK_EQ(evl_set_timeout(loop, ms[i], task_done, &tasks[i], NULL, NULL), 0);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    CHECK_EQ(g.calls, 1);
    CHECK_EQ(g.status, -EIO);
    CHECK_EQ(g.freed, 1);
    CHECK_EQ(g.late, 0);
    CHECK_EQ(g.finished, 3); /* the later dones were accepted (checked in task_done) */
    CHECK_EQ(evl_loop_free(loop), 0);
}

/* Pool work reporting into one gather: the usual C use. */
static void work(void *data) {
    (void)data;
}
static gather_state *work_gather;
static void work_done(evl_loop *loop, int status, void *data) {
    (void)data;
    CHECK_EQ(evl_gather_done(loop, work_gather->id, status), 0);
}

static void test_pool_work(void) {
    evl_loop *loop = NULL;
    CHECK_EQ(evl_loop_new(&loop), 0);
    gather_state g;
    memset(&g, 0, sizeof g);
    work_gather = &g;
    CHECK_EQ(evl_gather_new(loop, 4, final_cb, &g, free_state, &g.id), 0);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(evl_queue_work(loop, work, work_done, NULL, NULL, NULL), 0);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    CHECK_EQ(g.calls, 1);
    CHECK_EQ(g.status, 0);
    CHECK_EQ(g.freed, 1);
    CHECK_EQ(evl_loop_free(loop), 0);
}

/* A gather does not keep the loop alive; freeing the loop frees its data
 * once and never runs the final callback. */
static void test_loop_freed_with_a_gather_pending(void) {
    evl_loop *loop = NULL;
    CHECK_EQ(evl_loop_new(&loop), 0);
    gather_state g;
    memset(&g, 0, sizeof g);
    CHECK_EQ(evl_gather_new(loop, 2, final_cb, &g, free_state, &g.id), 0);
    CHECK_EQ(evl_gather_done(loop, g.id, 0), 0);
    CHECK_EQ(evl_is_alive(loop), 0);
    CHECK_EQ(evl_run(loop, EVL_RUN_DEFAULT), 0);
    CHECK_EQ(g.calls, 0);
    CHECK_EQ(evl_loop_free(loop), 0);
    CHECK_EQ(g.calls, 0);
    CHECK_EQ(g.freed, 1);
}

int main(void) {
    test_all_ok_in_any_order();
    test_first_error_wins_once();
    test_pool_work();
    test_loop_freed_with_a_gather_pending();
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
