#!/usr/bin/env bash
# Servers measured with clients nobody here wrote, side by side, REPS times
# (interleaved), medians reported with the server's CPU time per request:
#
#   - examples/minikv.rs vs redis-server (Redis's own ae loop, one IO thread,
#     no persistence), both driven by redis-benchmark;
#   - examples/hello_http.rs vs the same server on Node's http and on
#     asyncio (and uvloop where installed), driven by wrk.
#
#   bash benches/servers.sh            (REPS=3; writes target/bench/servers.md)
#
# Installs what is missing (Debian's redis-server, redis-tools, wrk, nodejs).
# Client and server share this machine's cores: the figures compare servers
# under the same client, they are not what a dedicated server would do.
set -uo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-3}
REQUESTS=${REQUESTS:-200000}
DURATION=${DURATION:-5}
out=target/bench
mkdir -p "$out"
raw="$out/servers.jsonl"
: >"$raw"
log() { printf '%s\n' "$*" >&2; }

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-benchmark >/dev/null || need+=(redis-tools)
command -v wrk >/dev/null || need+=(wrk)
command -v node >/dev/null || need+=(nodejs)
if [ ${#need[@]} -gt 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}") >/dev/null 2>&1
fi
cargo build --release --quiet --example minikv --example hello_http || exit 1
VENV=target/bench-venv
PY=python3
[ -x "$VENV/bin/python" ] && PY="$VENV/bin/python"

# CPU ticks (user + system) a process used so far.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

# start NAME CMD...: starts a server that prints "... listening on HOST:PORT"
# and sets PID and PORT.
start() {
  local name=$1; shift
  "$@" >"$out/$name.out" 2>"$out/$name.err" &
  PID=$!
  for _ in $(seq 1 100); do
    PORT=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$out/$name.out" | head -1)
    [ -n "$PORT" ] && return 0
    sleep 0.05
  done
  log "$name did not start: $(head -c 300 "$out/$name.err")"
  kill "$PID" 2>/dev/null
  return 1
}

stop() { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; }

kv_run() { # NAME: redis-benchmark against the server on PORT
  local name=$1 before after
  before=$(ticks "$PID")
  redis-benchmark -p "$PORT" -n "$REQUESTS" -c 50 -P 16 -t ping,set,get,incr --csv 2>/dev/null \
    | grep -v '^"test"' >"$out/kv.csv"
  after=$(ticks "$PID")
  python3 - "$name" "$out/kv.csv" "$((after - before))" "$HZ" "$REQUESTS" >>"$raw" <<'PY'
import csv, json, sys
name, path, ticks, hz, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rows = list(csv.reader(open(path)))
rates = {r[0]: float(r[1]) for r in rows if len(r) > 1}
total = n * len(rates)
print(json.dumps({"bench": "kv", "server": name, "rates": rates,
                  "cpu_us_per_req": ticks / hz * 1e6 / total if total else None}))
PY
}

http_run() { # NAME
  local name=$1 before after
  before=$(ticks "$PID")
  wrk -t1 -c50 -d"${DURATION}s" "http://127.0.0.1:$PORT/" >"$out/wrk.txt" 2>&1
  after=$(ticks "$PID")
  python3 - "$name" "$out/wrk.txt" "$((after - before))" "$HZ" >>"$raw" <<'PY'
import json, re, sys
name, path, ticks, hz = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
text = open(path).read()
rps = re.search(r"Requests/sec:\s*([\d.]+)", text)
total = re.search(r"(\d+) requests in", text)
errors = "Non-2xx" in text or "Socket errors" in text
n = int(total.group(1)) if total else 0
print(json.dumps({"bench": "http", "server": name, "rps": float(rps.group(1)) if rps else None,
                  "errors": errors, "cpu_us_per_req": ticks / hz * 1e6 / n if n else None}))
PY
}

for rep in $(seq 1 "$REPS"); do
  log "rep $rep/$REPS: key-value servers (redis-benchmark)"
  if start minikv target/release/examples/minikv 0; then kv_run minikv; stop; fi
  # redis-server cannot pick a free port and print it: find one first.
  PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --io-threads 1 \
    --loglevel warning >"$out/redis.out" 2>&1 &
  PID=$!
  for _ in $(seq 1 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
  kv_run redis-server
  stop
  log "rep $rep/$REPS: HTTP servers (wrk)"
  if start hello_http target/release/examples/hello_http 0; then http_run evloop; stop; fi
  if command -v node >/dev/null && start node_http node benches/peers/hello_http.js 0; then http_run node; stop; fi
  if start asyncio_http "$PY" benches/peers/hello_http.py 0; then http_run asyncio; stop; fi
  if "$PY" -c "import uvloop" 2>/dev/null && start uvloop_http "$PY" benches/peers/hello_http.py 0 uvloop; then
    http_run uvloop; stop
  fi
done

python3 - "$raw" "$REPS" <<'PY' | tee "$out/servers.md"
import json, statistics, sys
raw, reps = sys.argv[1], sys.argv[2]
kv, http = {}, {}
for line in open(raw):
    r = json.loads(line)
    (kv if r["bench"] == "kv" else http).setdefault(r["server"], []).append(r)
med = lambda xs: statistics.median(xs) if xs else None
print(f"Real clients, medians of {reps} interleaved runs (`bash benches/servers.sh`):\n")
tests = ["PING_INLINE", "PING_MBULK", "SET", "GET", "INCR"]
print("| redis-benchmark -c 50 -P 16 | " + " | ".join(tests) + " | CPU µs/req |")
print("|---" * (len(tests) + 2) + "|")
for s in ["minikv", "redis-server"]:
    rs = kv.get(s, [])
    cells = [f"{med([r['rates'].get(t, 0) for r in rs]) / 1e3:.0f} k/s" if rs else "–" for t in tests]
    cpu = med([r["cpu_us_per_req"] for r in rs if r["cpu_us_per_req"]])
    print(f"| {s} | " + " | ".join(cells) + f" | {cpu:.2f} |" if cpu else f"| {s} | " + " | ".join(cells) + " | – |")
if "minikv" in kv and "redis-server" in kv:
    ratios = [med([r['rates'].get(t, 0) for r in kv['minikv']]) / med([r['rates'].get(t, 1) for r in kv['redis-server']]) for t in tests]
    print("| minikv / redis-server | " + " | ".join(f"{x:.2f}×" for x in ratios) + " | |")
print("\n| wrk -t1 -c50 | requests/s | CPU µs/req | evloop's ratio | errors |")
print("|---|---|---|---|---|")
base = med([r["rps"] for r in http.get("evloop", []) if r["rps"]])
for s in ["evloop", "node", "asyncio", "uvloop"]:
    rs = http.get(s)
    if not rs:
        continue
    rps = med([r["rps"] for r in rs if r["rps"]])
    cpu = med([r["cpu_us_per_req"] for r in rs if r["cpu_us_per_req"]])
    ratio = f"{base / rps:.2f}×" if base and rps else "–"
    print(f"| {s} | {rps / 1e3:.1f} k | {cpu:.2f} | {ratio} | {'yes' if any(r['errors'] for r in rs) else 'none'} |")
PY
