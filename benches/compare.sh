#!/usr/bin/env bash
# Runs every workload (W1 ... W6, W5c; see benches/README.md) for evloop and
# its peers, interleaved (A B C A B C ...), REPS times, then prints a table of
# medians with evloop's ratio to each peer and writes it to benches/RESULTS.md.
#
#   bash benches/compare.sh            # REPS=3, default n per workload
#   REPS=5 TIMEOUT=60 bash benches/compare.sh
#
# Installs what is missing first: Debian's libuv1-dev and nodejs, a Python
# virtualenv with uvloop (under target/bench-venv), and the Rust peers
# (benches/peers, their own cargo project). A peer that cannot be installed is
# reported as missing; a run that fails or exceeds TIMEOUT seconds is
# reported as such, never silently dropped.
set -uo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-3}
TIMEOUT=${TIMEOUT:-30}
WORKLOADS=(W1 W2 W3 W4 W5 W5c W6)
PEERS=(evloop libuv node asyncio uvloop tokio delayqueue calloop baseline)
out=target/bench
mkdir -p "$out"
raw="$out/raw.jsonl"
: >"$raw"
declare -A missing=()

log() { printf '%s\n' "$*" >&2; }

apt_install() {
  command -v apt-get >/dev/null || return 1
  [ -n "${APT_UPDATED:-}" ] || { apt-get update -qq >/dev/null 2>&1; APT_UPDATED=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1
}

log "== building evloop's workloads"
cargo bench --bench workloads --no-run >/dev/null 2>&1 || { log "evloop benches do not build"; exit 1; }
EVLOOP_BIN=$(cargo bench --bench workloads --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -1)

log "== libuv"
if ! pkg-config --exists libuv 2>/dev/null && [ ! -e /usr/include/uv.h ]; then apt_install libuv1-dev; fi
if cc -O2 -o "$out/libuv_bench" benches/peers/libuv_bench.c -luv -lpthread 2>"$out/libuv.err"; then :; else
  missing[libuv]="libuv1-dev could not be installed or built ($(head -c 200 "$out/libuv.err"))"
fi

log "== node"
command -v node >/dev/null || apt_install nodejs
command -v node >/dev/null || missing[node]="node is not installed and could not be"

log "== python asyncio and uvloop"
VENV=target/bench-venv
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV" >/dev/null 2>&1; fi
if [ ! -x "$VENV/bin/python" ]; then
  missing[asyncio]="python3 -m venv failed"
  missing[uvloop]="python3 -m venv failed"
elif ! "$VENV/bin/python" -c "import uvloop" 2>/dev/null; then
  "$VENV/bin/pip" install -q uvloop >/dev/null 2>&1 || missing[uvloop]="pip install uvloop failed"
fi

log "== tokio, tokio-util's DelayQueue, calloop and the hand-written baselines"
if ! (cd benches/peers && cargo build --release -q) 2>"$out/peers.err"; then
  missing[tokio]="benches/peers does not build"
  missing[delayqueue]="benches/peers does not build"
  missing[calloop]="benches/peers does not build"
  missing[baseline]="benches/peers does not build"
fi
PEERS_BIN=benches/peers/target/release

# The command line of one peer for one workload, or nothing if it has none.
cmd_for() {
  local peer=$1 w=$2
  case $peer in
    evloop) echo "$EVLOOP_BIN $w" ;;
    libuv) echo "$out/libuv_bench $w" ;;
    node) echo "node benches/peers/node_bench.js $w" ;;
    asyncio | uvloop) echo "$VENV/bin/python benches/peers/py_bench.py $peer $w" ;;
    tokio) echo "$PEERS_BIN/tokio_bench $w" ;;
    delayqueue) case $w in W3 | W4) echo "$PEERS_BIN/delayqueue_bench $w" ;; esac ;;
    calloop) echo "$PEERS_BIN/calloop_bench $w" ;;
    baseline) case $w in W1 | W2 | W5 | W5c) echo "$PEERS_BIN/baseline $w" ;; esac ;;
  esac
}

declare -A failed=()
for rep in $(seq 1 "$REPS"); do
  for w in "${WORKLOADS[@]}"; do
    for peer in "${PEERS[@]}"; do
      [ -n "${missing[$peer]:-}" ] && continue
      [ -n "${failed[$peer/$w]:-}" ] && continue
      cmd=$(cmd_for "$peer" "$w")
      [ -n "$cmd" ] || continue
      log "rep $rep/$REPS $w $peer"
      line=$(timeout "$TIMEOUT" $cmd 2>>"$out/stderr.log" | tail -1)
      if [[ $line == "{"* ]]; then
        echo "$line" >>"$raw"
      else
        failed[$peer/$w]=1
        echo "{\"peer\":\"$peer\",\"workload\":\"$w\",\"failed\":\"no result within ${TIMEOUT} s\"}" >>"$raw"
      fi
    done
  done
done

missing_json="{"
for p in "${!missing[@]}"; do missing_json+="\"$p\":\"${missing[$p]//\"/\'}\","; done
missing_json="${missing_json%,}}"

python3 - "$raw" "$missing_json" "$REPS" <<'PY'
import json, statistics, sys, platform, os, datetime, subprocess
raw, missing, reps = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
peers = ["evloop", "libuv", "node", "asyncio", "uvloop", "tokio", "delayqueue", "calloop", "baseline"]
workloads = ["W1", "W2", "W3", "W4", "W5", "W5c", "W6"]
runs, failed = {}, {}
for line in open(raw):
    r = json.loads(line)
    if "failed" in r:
        failed[(r["peer"], r["workload"])] = r["failed"]
    else:
        runs.setdefault((r["peer"], r["workload"]), []).append(r)

def med(peer, w, key):
    rs = runs.get((peer, w))
    return statistics.median(r[key] for r in rs) if rs else None

def cell(peer, w):
    if peer in missing:
        return "missing"
    if (peer, w) in failed:
        return "timeout"
    rate = med(peer, w, "rate")
    if rate is None:
        return "–"
    return f"{rate / 1e6:.2f} M/s" if rate >= 1e6 else f"{rate / 1e3:.1f} k/s"

def ratio(peer, w):
    a, b = med("evloop", w, "rate"), med(peer, w, "rate")
    if peer in missing or (peer, w) in failed:
        return cell(peer, w)
    return f"{a / b:.2f}×" if a and b else "–"

cpu = "unknown CPU"
try:
    for l in open("/proc/cpuinfo"):
        if l.startswith("model name"):
            cpu = l.split(":", 1)[1].strip()
            break
except OSError:
    pass
lines = []
lines.append(f"Measured {datetime.date.today()} on {cpu}, {os.cpu_count()} cores, "
             f"{platform.system()} {platform.release()}; medians of {reps} interleaved runs "
             "(`bash benches/compare.sh`). Rates are operations per second (higher is better).")
lines.append("")
lines.append("| workload | " + " | ".join(peers) + " |")
lines.append("|---" * (len(peers) + 1) + "|")
for w in workloads:
    lines.append(f"| {w} | " + " | ".join(cell(p, w) for p in peers) + " |")
lines.append("")
lines.append("evloop's rate divided by each peer's (above 1: evloop is faster):")
lines.append("")
others = [p for p in peers if p != "evloop"]
lines.append("| workload | " + " | ".join(others) + " |")
lines.append("|---" * (len(others) + 1) + "|")
for w in workloads:
    lines.append(f"| {w} | " + " | ".join(ratio(p, w) for p in others) + " |")
lines.append("")
lines.append("W3 (million timers) in detail: setup seconds, peak RSS, how late the last timer fired:")
lines.append("")
lines.append("| peer | setup s | run s | RSS MiB | last late ms |")
lines.append("|---|---|---|---|---|")
for p in peers:
    if med(p, "W3", "setup_secs") is None:
        continue
    lines.append(f"| {p} | {med(p, 'W3', 'setup_secs'):.3f} | {med(p, 'W3', 'run_secs'):.3f} | "
                 f"{med(p, 'W3', 'rss_kb') / 1024:.0f} | {med(p, 'W3', 'last_late_ms'):.2f} |")
if missing:
    lines.append("")
    for p, why in sorted(missing.items()):
        lines.append(f"- {p}: missing ({why})")
text = "\n".join(lines) + "\n"
print(text)
open("benches/RESULTS.md", "w").write("# Benchmark results\n\n" + text)
PY

# The servers under real clients (redis-benchmark, wrk), appended to RESULTS.md.
if [ -z "${NO_SERVERS:-}" ]; then
  REPS=$REPS bash benches/servers.sh >/dev/null && {
    printf '\n## Real clients\n\n' >>benches/RESULTS.md
    cat target/bench/servers.md >>benches/RESULTS.md
  }
fi
