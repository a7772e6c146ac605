"""evloop from Python through ctypes (examples/python/evloop.py).

    python3 examples/python/demo.py [path/to/libevloop.so]

Part 1: evloop drives the thread: the count example's three counts, a
thread posting into the loop, and an fd watcher.
Part 2: evloop embedded in asyncio: an asyncio coroutine awaits a future
that an evloop timer resolves, while asyncio keeps its own timers.
"""

import asyncio
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evloop  # noqa: E402


def evloop_drives(lib):
    lp = evloop.Loop(lib)

    def count(name):
        print("One", flush=True)
        lp.set_timeout(100, lambda: print("Two", flush=True))

    for n in range(3):
        lp.call_soon(lambda n=n: count(n))
    lp.run()

    # Another thread posts; an fd watcher sees a pipe become readable.
    post, close = lp.post_from_thread()
    r, w = os.pipe()

    def readable(fd, events):
        print("pipe says", os.read(fd, 16).decode(), flush=True)
        lp.unwatch(watch_id)
        os.close(r)

    watch_id = lp.watch(r, evloop.EVL_READABLE, readable)

    def from_thread():
        post(lambda: (print("posted from a thread", flush=True), os.write(w, b"hi"), os.close(w)))
        close()

    t = threading.Thread(target=from_thread)
    t.start()
    lp.run()
    t.join()

    # An exception in a callback comes out of run(), and the loop stays usable.
    lp.call_soon(lambda: 1 / 0)
    try:
        lp.run()
    except ZeroDivisionError:
        print("callback error re-raised by run", flush=True)
    lp.run()
    # Every callable was released when evloop called free_data for it.
    print("callables still held:", len(lp._callbacks), flush=True)
    lp.close()


def evloop_in_asyncio(lib):
    lp = evloop.Loop(lib)

    async def main():
        aloop = asyncio.get_running_loop()
        detach = lp.attach_to_asyncio(aloop)
        done = aloop.create_future()
        ticks = []
        lp.set_timeout(50, lambda: done.set_result(f"evloop timer after {lp.now_ms()} ms"))
        aloop.call_later(0.01, lambda: ticks.append("asyncio timer"))
        print(await done, flush=True)
        print(f"asyncio ran {len(ticks)} timer meanwhile", flush=True)
        detach()

    asyncio.run(main())
    lp.close()


if __name__ == "__main__":
    lib = sys.argv[1] if len(sys.argv) > 1 else None
    evloop_drives(lib)
    evloop_in_asyncio(lib)
    print("done", flush=True)
