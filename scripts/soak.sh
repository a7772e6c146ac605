#!/usr/bin/env bash
# Soak test: the evloop echo server (examples/echo_server.rs) under continuous
# load from several concurrent clients (examples/soak.rs) on 127.0.0.1.
#
#   bash scripts/soak.sh [SECONDS]     # default 600 (10 minutes)
#   SOAK_SECONDS=30 SOAK_CLIENTS=8 bash scripts/soak.sh
#
# Every second it samples the server's RSS (VmRSS of /proc/PID/status) and
# open fd count (/proc/PID/fd) and prints the sample. Pass rule (exit 0 only
# if all hold):
#   - warm-up is the first 20 % of the samples; W is the RSS of its last one;
#   - RSS: every later sample is at most W + SOAK_RSS_SLACK_KIB (default
#     1024 KiB);
#   - fds: every later sample is at most the server's idle count (before any
#     client) + 2 per client (a client's closing and its next connection);
#   - fds: 2 s after the load stopped, the count is back to the idle count;
#   - the clients saw no error (every echo byte-exact) and the server lived.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${1:-${SOAK_SECONDS:-600}}
clients=${SOAK_CLIENTS:-8}
rss_slack=${SOAK_RSS_SLACK_KIB:-1024}
target=${CARGO_TARGET_DIR:-target}

cargo build --release --quiet --example echo_server --example soak
tmp=$(mktemp -d)
server=""
client=""
cleanup() {
    [ -n "$client" ] && kill "$client" 2>/dev/null || true
    [ -n "$server" ] && kill "$server" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

"$target/release/examples/echo_server" 127.0.0.1:0 >"$tmp/server.out" 2>"$tmp/server.err" &
server=$!
for _ in $(seq 100); do
    grep -q "echo server on" "$tmp/server.out" && break
    sleep 0.05
done
addr=$(sed -n 's/^echo server on //p' "$tmp/server.out")
[ -n "$addr" ] || { echo "soak: the server did not start"; cat "$tmp/server.err"; exit 1; }

rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$server/status"; }
fds() { ls "/proc/$server/fd" | wc -l; }
idle_fds=$(fds)
echo "soak: server pid $server on $addr, $clients clients for ${duration} s; idle: $(rss) KiB, $idle_fds fds"

"$target/release/examples/soak" "$addr" "$duration" "$clients" >"$tmp/client.out" 2>&1 &
client=$!
rss_samples=()
fd_samples=()
for t in $(seq "$duration"); do
    sleep 1
    kill -0 "$server" 2>/dev/null || { echo "soak: the server died"; exit 1; }
    r=$(rss)
    f=$(fds)
    rss_samples+=("$r")
    fd_samples+=("$f")
    printf 'soak: t=%4ds rss=%6d KiB fds=%3d\n' "$t" "$r" "$f"
done
client_ok=1
wait "$client" || client_ok=0
client=""
cat "$tmp/client.out"
sleep 2
after_fds=$(fds)
after_rss=$(rss)

n=${#rss_samples[@]}
warm=$(( n / 5 > 0 ? n / 5 : 1 ))
base=${rss_samples[warm - 1]}
max_rss=0
max_fds=0
for ((i = warm; i < n; i++)); do
    if (( rss_samples[i] > max_rss )); then max_rss=${rss_samples[i]}; fi
    if (( fd_samples[i] > max_fds )); then max_fds=${fd_samples[i]}; fi
done
fd_bound=$(( idle_fds + 2 * clients ))
echo "soak: warm-up $warm samples, RSS after warm-up $base KiB, max after it $max_rss KiB (bound $(( base + rss_slack ))); \
max fds after warm-up $max_fds (bound $fd_bound); after the load: $after_fds fds (idle $idle_fds), $after_rss KiB"

ok=1
(( max_rss <= base + rss_slack )) || { echo "soak: FAIL: RSS grew by $(( max_rss - base )) KiB after warm-up"; ok=0; }
(( max_fds <= fd_bound )) || { echo "soak: FAIL: $max_fds fds under load (bound $fd_bound)"; ok=0; }
(( after_fds == idle_fds )) || { echo "soak: FAIL: $after_fds fds after the load, $idle_fds before it"; ok=0; }
(( client_ok )) || { echo "soak: FAIL: the clients reported errors"; ok=0; }
if [ -s "$tmp/server.err" ]; then
    echo "soak: server stderr:"
    cat "$tmp/server.err"
fi
if (( ok )); then
    echo "soak: PASS"
else
    exit 1
fi
