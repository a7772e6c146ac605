"""A small ctypes binding of evloop's C API (include/evloop.h).

    lp = evloop.Loop()                   # evloop.Loop(lib="/path/libevloop.so")
    lp.set_timeout(100, lambda: print("later"))
    lp.call_soon(lambda: print("soon"))
    lp.run()

Every C callback goes through one of a few module-level trampolines; the C
side gets a token (an integer in `data`) and the Python callable lives in
`Loop._callbacks` until evloop calls `free_data` for it. So no callable or
ctypes function object can be collected while evloop may still call it, and
nothing leaks once evloop is done with it (the two classic ctypes callback
mistakes). An exception raised in a callback is kept and re-raised by the
`run` that ran it.

`Loop.attach_to_asyncio(aloop)` embeds evloop in an asyncio event loop: the
asyncio loop watches `evl_backend_fd` and sleeps at most
`evl_backend_timeout`, then runs one non-blocking pass (libuv's embedding
recipe).
"""

import ctypes
import ctypes.util
import itertools
import os
import threading

EVL_RUN_DEFAULT, EVL_RUN_ONCE, EVL_RUN_NOWAIT = 0, 1, 2
EVL_READABLE, EVL_WRITABLE, EVL_HANGUP, EVL_ERROR = 1, 2, 4, 8

_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)
_IO_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p)
_FREE_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


def _load(path):
    path = path or os.environ.get("EVLOOP_LIB") or ctypes.util.find_library("evloop")
    if not path:
        raise OSError("libevloop.so not found: pass lib=, set EVLOOP_LIB, or install it")
    lib = ctypes.CDLL(path)
    p, i, u64 = ctypes.c_void_p, ctypes.c_int, ctypes.c_uint64
    sigs = {
        "evl_loop_new": (i, [ctypes.POINTER(p)]),
        "evl_loop_free": (i, [p]),
        "evl_run": (i, [p, i]),
        "evl_stop": (None, [p]),
        "evl_now_ms": (u64, [p]),
        "evl_is_alive": (i, [p]),
        "evl_call_soon": (i, [p, _CB, p, _FREE_CB]),
        "evl_set_timeout": (i, [p, u64, _CB, p, _FREE_CB, ctypes.POINTER(u64)]),
        "evl_set_interval": (i, [p, u64, _CB, p, _FREE_CB, ctypes.POINTER(u64)]),
        "evl_clear_timer": (i, [p, u64]),
        "evl_io_start": (i, [p, i, i, _IO_CB, p, _FREE_CB, ctypes.POINTER(u64)]),
        "evl_io_stop": (i, [p, u64]),
        "evl_handle_new": (p, [p]),
        "evl_handle_post": (i, [p, _CB, p, _FREE_CB]),
        "evl_handle_free": (None, [p]),
        "evl_backend_fd": (i, [p]),
        "evl_backend_timeout": (i, [p]),
        "evl_err_name": (ctypes.c_char_p, [i]),
    }
    for name, (restype, argtypes) in sigs.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    return lib


class EvloopError(OSError):
    def __init__(self, lib, call, rc):
        name = lib.evl_err_name(rc).decode()
        super().__init__(-rc, f"{call}: {name}")


class Loop:
    """One evloop loop, driven from the thread that made it."""

    def __init__(self, lib=None):
        self._lib = _load(lib)
        self._callbacks = {}  # token -> Python callable, until free_data
        self._tokens = itertools.count(1)
        self._lock = threading.Lock()  # posts come from other threads
        self._error = None
        # The trampolines: kept as attributes, so they live as long as the loop.
        self._cb = _CB(self._call)
        self._io_cb = _IO_CB(self._call_io)
        self._free = _FREE_CB(self._forget)
        ptr = ctypes.c_void_p()
        self._check("evl_loop_new", self._lib.evl_loop_new(ctypes.byref(ptr)))
        self._ptr = ptr

    # -- plumbing -------------------------------------------------------------

    def _check(self, call, rc):
        if rc < 0:
            raise EvloopError(self._lib, call, rc)
        return rc

    def _keep(self, fn):
        with self._lock:
            token = next(self._tokens)
            self._callbacks[token] = fn
        return token

    def _forget(self, data):
        with self._lock:
            self._callbacks.pop(data, None)

    def _run_callback(self, data, *args):
        fn = self._callbacks.get(data)
        if fn is None:
            return
        try:
            fn(*args)
        except BaseException as e:  # kept for run(); evloop must not unwind
            if self._error is None:
                self._error = e
            self._lib.evl_stop(self._ptr)

    def _call(self, _loop, data):
        self._run_callback(data)

    def _call_io(self, _loop, fd, events, data):
        self._run_callback(data, fd, events)

    # -- the API --------------------------------------------------------------

    def call_soon(self, fn):
        self._check("evl_call_soon", self._lib.evl_call_soon(self._ptr, self._cb, self._keep(fn), self._free))

    def set_timeout(self, ms, fn):
        out = ctypes.c_uint64()
        token = self._keep(fn)
        self._check("evl_set_timeout", self._lib.evl_set_timeout(self._ptr, ms, self._cb, token, self._free, ctypes.byref(out)))
        return out.value

    def set_interval(self, ms, fn):
        out = ctypes.c_uint64()
        token = self._keep(fn)
        self._check("evl_set_interval", self._lib.evl_set_interval(self._ptr, ms, self._cb, token, self._free, ctypes.byref(out)))
        return out.value

    def clear_timer(self, timer_id):
        return self._check("evl_clear_timer", self._lib.evl_clear_timer(self._ptr, timer_id)) == 1

    def watch(self, fd, events, fn):
        """fn(fd, events) runs while fd is ready; returns an id for unwatch."""
        out = ctypes.c_uint64()
        token = self._keep(fn)
        self._check("evl_io_start", self._lib.evl_io_start(self._ptr, fd, events, self._io_cb, token, self._free, ctypes.byref(out)))
        return out.value

    def unwatch(self, watch_id):
        self._check("evl_io_stop", self._lib.evl_io_stop(self._ptr, watch_id))

    def post_from_thread(self):
        """A function any thread may call with a callable to run on the loop."""
        handle = self._lib.evl_handle_new(self._ptr)

        def post(fn):
            return self._check("evl_handle_post", self._lib.evl_handle_post(handle, self._cb, self._keep(fn), self._free))

        def close():
            self._lib.evl_handle_free(handle)

        return post, close

    def now_ms(self):
        return self._lib.evl_now_ms(self._ptr)

    def is_alive(self):
        return self._lib.evl_is_alive(self._ptr) == 1

    def stop(self):
        self._lib.evl_stop(self._ptr)

    def run(self, mode=EVL_RUN_DEFAULT):
        rc = self._check("evl_run", self._lib.evl_run(self._ptr, mode))
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return rc

    def close(self):
        if self._ptr:
            self._check("evl_loop_free", self._lib.evl_loop_free(self._ptr))
            self._ptr = None

    # -- embedding ------------------------------------------------------------

    def attach_to_asyncio(self, aloop):
        """Drives this loop from an asyncio event loop until detached.

        asyncio watches evl_backend_fd; whenever it is readable, or evloop's
        next timer is due (evl_backend_timeout), one non-blocking evloop pass
        runs. Returns a function that detaches it.
        """
        fd = self._lib.evl_backend_fd(self._ptr)
        state = {"timer": None}

        def schedule():
            if state["timer"] is not None:
                state["timer"].cancel()
                state["timer"] = None
            timeout = self._lib.evl_backend_timeout(self._ptr)
            if timeout >= 0:  # -1: nothing due by time (IO or posts only, or idle)
                state["timer"] = aloop.call_later(timeout / 1000, step)

        def step():
            self.run(EVL_RUN_NOWAIT)
            schedule()

        aloop.add_reader(fd, step)
        aloop.call_soon(step)

        def detach():
            aloop.remove_reader(fd)
            if state["timer"] is not None:
                state["timer"].cancel()

        return detach
