#!/usr/bin/env bash
# Runs every workload (W1 ... W6, W5c; see benches/README.md) for evloop and
# its peers, interleaved (A B C A B C ...), REPS times, then prints a table of
# medians with evloop's ratio to each peer and writes it to benches/RESULTS.md.
# Issue 16's goals are also checked run by run: run k of evloop against run k
# of the peer (interleaved, so both saw the machine in the same state), since
# a median can hide a run that misses (W4 must beat libuv 10x in every run).
#
#   bash benches/compare.sh            # REPS=3, default n per workload
#   REPS=5 TIMEOUT=60 bash benches/compare.sh
#
# Installs what is missing first: Debian's libuv1-dev and nodejs, a Python
# virtualenv with uvloop (under target/bench-venv), and the Rust peers
# (benches/peers, their own cargo project). A peer that cannot be installed is
# reported as missing; a run that fails or exceeds TIMEOUT seconds is
# reported as such, never silently dropped. Last, benches/chart.py draws
# benches/ratios.png from RESULTS.md (matplotlib, pip-installed into the same
# virtualenv; without it compare.sh says so and draws no chart).
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

log "== matplotlib, for the chart (benches/chart.py)"
if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c "import matplotlib" 2>/dev/null; then
  "$VENV/bin/pip" install -q matplotlib >/dev/null 2>"$out/matplotlib.err" ||
    log "pip install matplotlib failed (see $out/matplotlib.err): there will be no chart"
fi

log "== tokio, tokio-util's DelayQueue, calloop and the hand-written baselines"
if ! (cd benches/peers && cargo build --release -q) 2>"$out/peers.err"; then
  missing[tokio]="benches/peers does not build"
  missing[delayqueue]="benches/peers does not build"
  missing[calloop]="benches/peers does not build"
  missing[baseline]="benches/peers does not build"
fi
PEERS_BIN=benches/peers/target/release

# W1 and W2 take a few milliseconds on evloop and the baseline at the
# default n (a million), too short to resolve their ratio on a shared
# machine: those two run them longer. Rates are per operation, and the other
# peers' runs last long enough at a million for start-up not to count.
long_n() { case $1 in W1) echo 20000000 ;; W2) echo 5000000 ;; esac; }

# The command line of one peer for one workload, or nothing if it has none.
cmd_for() {
  local peer=$1 w=$2
  case $peer in
    evloop) echo "$EVLOOP_BIN $w $(long_n "$w")" ;;
    libuv) echo "$out/libuv_bench $w" ;;
    node) echo "node benches/peers/node_bench.js $w" ;;
    asyncio | uvloop) echo "$VENV/bin/python benches/peers/py_bench.py $peer $w" ;;
    tokio) echo "$PEERS_BIN/tokio_bench $w" ;;
    delayqueue) case $w in W3 | W4) echo "$PEERS_BIN/delayqueue_bench $w" ;; esac ;;
    calloop) echo "$PEERS_BIN/calloop_bench $w" ;;
    baseline) case $w in W1 | W2 | W5 | W5c) echo "$PEERS_BIN/baseline $w $(long_n "$w")" ;; esac ;;
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
        echo "{\"rep\":$rep,${line#\{}" >>"$raw"
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

python3 - "$raw" "$missing_json" "$REPS" "${PEERS[*]}" "${WORKLOADS[*]}" <<'PY'
import json, statistics, sys, platform, os, datetime
raw, missing, reps = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
peers, workloads = sys.argv[4].split(), sys.argv[5].split()
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

def per_run(peer, w):
    """{k: evloop's rate in run k over the peer's in run k}, for the runs both finished."""
    ours = {r["rep"]: r["rate"] for r in runs.get(("evloop", w), [])}
    theirs = {r["rep"]: r["rate"] for r in runs.get((peer, w), [])}
    return {k: ours[k] / theirs[k] for k in sorted(ours.keys() & theirs.keys())}

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
             "(`bash benches/compare.sh`). Rates are operations per second (higher is better); "
             "evloop and the baseline run W1 with n = 20M and W2 with n = 5M, the others "
             "with n = 1M (a run of a few milliseconds cannot resolve their ratio).")
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
lines.append("")
lines.append("The ratios issue 16 sets goals on, run by run (run k of evloop divided by "
             "run k of the peer; the runs are interleaved):")
lines.append("")
lines.append("| ratio | " + " | ".join(f"run {k}" for k in range(1, reps + 1)) + " | min | median |")
lines.append("|---" * (reps + 3) + "|")
goal_ratios = [("W1", "baseline"), ("W2", "baseline"), ("W4", "libuv"), ("W5", "baseline"),
               ("W5c", "tokio")]
for w, peer in goal_ratios:
    by_run = per_run(peer, w)
    rs = list(by_run.values())
    cells = [f"{by_run[k]:.2f}×" if k in by_run else "–" for k in range(1, reps + 1)]
    summary = [f"{min(rs):.2f}×", f"{statistics.median(rs):.2f}×"] if rs else ["–", "–"]
    lines.append(f"| {w} vs {peer} | " + " | ".join(cells + summary) + " |")
lines.append("")

def goal(text, rs, name, value, target, runs_needed=1):
    """One line saying whether a goal is met, with the figure it was judged on."""
    if not rs:
        return f"- {text}: not measured"
    verdict = "yes" if value >= target else "**no**"
    note = f"; the goal asks for {runs_needed} paired runs" if len(rs) < runs_needed else ""
    return f"- {text}: {verdict} ({name} {value:.2f}× over {len(rs)} runs{note})"

w4, w5 = list(per_run("libuv", "W4").values()), list(per_run("baseline", "W5").values())
lines.append(goal("W4 ≥ 10× libuv in every run of 5", w4, "min", min(w4, default=0), 10,
                  runs_needed=5))
lines.append(goal("W5 ≥ 1.0× the polling baseline as a median", w5, "median",
                  statistics.median(w5) if w5 else 0, 1.0))
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

# The chart of the ratio table, from the RESULTS.md just written.
if "$VENV/bin/python" -c "import matplotlib" 2>/dev/null; then
  "$VENV/bin/python" benches/chart.py >&2 || log "benches/chart.py failed: benches/ratios.png is stale"
else
  log "no chart: matplotlib is not installed in $VENV, so benches/ratios.png is stale"
fi
