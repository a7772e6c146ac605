/* Watches a directory it makes under /tmp (mkdtemp), changes files in it one step at
 * a time (each step once the previous event arrived), prints the events,
 * and stops when the directory itself is removed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evloop.h"

static char dir[] = "/tmp/evloop-watch-c-XXXXXX", a[96], b[96];
static int step;

static const char *name_of(int event) {
    static const char *names[] = {"?", "created", "modified", "metadata", "removed",
                                  "renamed", "moved out", "moved in", "self removed",
                                  "self moved", "overflow"};
    return event > 0 && event <= EVL_FS_OVERFLOW ? names[event] : "?";
}

/* The next change, made once the previous one was seen. */
static void change(void) {
    FILE *f;
    switch (step++) {
    case 0:
        f = fopen(a, "w");
        if (f)
            fclose(f);
        break;
    case 1:
        f = fopen(a, "a");
        if (f) {
            fputs("hello\n", f);
            fclose(f);
        }
        break;
    case 2:
        rename(a, b);
        break;
    case 3:
        unlink(b);
        break;
    case 4:
        rmdir(dir);
        break;
    }
}

static void on_event(evl_loop *loop, evl_fs_watch *w, int event, const char *path,
                     const char *to, int is_dir, void *data) {
    (void)is_dir, (void)data;
    if (to)
        printf("%s %s -> %s\n", name_of(event), path, to);
    else
        printf("%s %s\n", name_of(event), path);
    if (event == EVL_FS_SELF_REMOVED) {
        evl_fs_watch_stop(loop, w);
        return;
    }
    if (event != EVL_FS_MODIFIED || step == 2) /* one line per step */
        change();
}

int main(void) {
    if (!mkdtemp(dir))
        return 1;
    snprintf(a, sizeof a, "%s/notes.txt", dir);
    snprintf(b, sizeof b, "%s/renamed.txt", dir);
    setvbuf(stdout, NULL, _IOLBF, 0);
    evl_loop *loop;
    evl_fs_watch *w;
    if (evl_loop_new(&loop) < 0)
        return 1;
    int rc = evl_fs_watch_start(loop, dir, 0, on_event, NULL, NULL, &w);
    if (rc < 0) {
        fprintf(stderr, "watch: %s\n", evl_strerror(rc));
        return 1;
    }
    change();
    if (evl_run(loop, EVL_RUN_DEFAULT) < 0)
        return 1;
    return evl_loop_free(loop) < 0;
}
