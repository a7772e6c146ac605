"""asyncio's and uvloop's side of the workload comparison (benches/README.md).

Usage: python py_bench.py asyncio|uvloop W1 [n]. Prints one JSON line.
"""
import asyncio
import json
import resource
import sys
import threading
import time


def report(peer, workload, n, secs, **extra):
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peer": peer, "workload": workload, "n": n, "secs": secs,
                      "rate": round(n / secs), "rss_kb": rss_kb, **extra}))


def chain(loop, n, done):
    left = [n]

    def step():
        left[0] -= 1
        if left[0] > 0:
            loop.call_soon(step)
        else:
            done()
    loop.call_soon(step)


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.t = transport

    def data_received(self, data):
        self.t.write(data)


class Pinger(asyncio.Protocol):
    def __init__(self, left, finished):
        self.left, self.got, self.finished = left, 0, finished

    def connection_made(self, transport):
        self.t = transport

    def data_received(self, data):
        self.got += len(data)
        while self.got >= 5:
            self.got -= 5
            self.left -= 1
            if self.left == 0:
                self.t.close()
                self.finished()
                return
            self.t.write(b"PING\n")


async def ping_pong(peer, w, n, conns):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    per = n // conns
    all_done = loop.create_future()
    open_ = [conns]

    def finished():
        open_[0] -= 1
        if open_[0] == 0:
            all_done.set_result(None)
    transports = []
    for _ in range(conns):
        t, _ = await loop.create_connection(lambda: Pinger(per, finished), "127.0.0.1", port)
        transports.append(t)
    start = time.perf_counter()
    for t in transports:
        t.write(b"PING\n")
    await all_done
    secs = time.perf_counter() - start
    server.close()
    report(peer, w, per * conns, secs, conns=conns)


def main():
    peer, w = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else (100000 if w.startswith("W5") else 1000000)
    if peer == "uvloop":
        import uvloop
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    if w == "W1":
        t = time.perf_counter()
        chain(loop, n, loop.stop)
        loop.run_forever()
        report(peer, w, n, time.perf_counter() - t)
    elif w == "W2":
        count = [0]

        def bump():
            count[0] += 1
        t = time.perf_counter()
        for _ in range(n):
            loop.call_soon(bump)
        loop.call_soon(loop.stop)  # runs after the n callbacks (FIFO)
        loop.run_forever()
        assert count[0] == n
        report(peer, w, n, time.perf_counter() - t)
    elif w == "W3":
        state = {"count": 0, "late": 0.0}
        t = time.perf_counter()
        base = loop.time()

        def fire(delay):
            state["count"] += 1
            state["late"] = (loop.time() - (base + delay)) * 1e3
            if state["count"] == n:
                loop.stop()
        for i in range(n):
            delay = (i // 1000 + 1) / 1000
            loop.call_at(base + delay, fire, delay)
        setup = time.perf_counter() - t
        t2 = time.perf_counter()
        loop.run_forever()
        run = time.perf_counter() - t2
        report(peer, w, n, setup + run, setup_secs=setup, run_secs=run, last_late_ms=state["late"])
    elif w == "W4":
        t = time.perf_counter()
        handles = [loop.call_later(10, loop.stop) for _ in range(n)]
        for h in handles:
            h.cancel()
        loop.call_soon(loop.stop)  # nothing else is left: the loop ends now
        loop.run_forever()
        report(peer, w, n, time.perf_counter() - t)
    elif w in ("W5", "W5c"):
        loop.run_until_complete(ping_pong(peer, w, n, 1 if w == "W5" else 100))
    elif w == "W6":
        count = [0]

        def bump():
            count[0] += 1
            if count[0] == n:
                loop.stop()

        def poster():
            for _ in range(n):
                loop.call_soon_threadsafe(bump)
        t = time.perf_counter()
        th = threading.Thread(target=poster)
        th.start()
        loop.run_forever()
        th.join()
        report(peer, w, n, time.perf_counter() - t)
    else:
        sys.exit(f"unknown workload {w}")
    loop.close()


if __name__ == "__main__":
    main()
