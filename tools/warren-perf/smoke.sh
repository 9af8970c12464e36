#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Smoke test for warren-perf against a real warrend: start warrend on a free
# loopback port with a minimal config, run warren-perf for about 2 seconds
# (1 producer with confirms, 1 consumer), check the JSON summary shows
# messages published, confirmed and consumed and the broker's CPU time, the
# same for about a second of --unbatched (2 producers, 2 consumers, each
# ack on its own), then stop warrend with SIGTERM and require exit status 0.
#   usage: smoke.sh WARREND WARREN_PERF
set -uo pipefail

warrend=$1
perf=$2
PYTHON=/usr/bin/python3

dir=$(mktemp -d "${TMPDIR:-/tmp}/warren-perf-smoke.XXXXXX")
pid=""
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    rm -rf "$dir"
}
trap cleanup EXIT

fail() {
    echo "perf-smoke: $*" >&2
    if [ -f "$dir/warrend.log" ]; then
        echo "--- warrend log" >&2
        tail -n 30 "$dir/warrend.log" >&2
    fi
    exit 1
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Waits (bounded) until warrend serves the port; false if it died or never did.
wait_port() {
    local deadline=$((SECONDS + 10))
    until listening "$port"; do
        kill -0 "$pid" 2>/dev/null || return 1
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

# A port nobody listens on can still be taken by the time warrend binds it:
# try a few, starting from a random one in the range reserved for this.
started=0
for attempt in 1 2 3 4 5; do
    port=$((17000 + RANDOM % 100))
    listening "$port" && continue
    printf '{"listeners":[{"address":"127.0.0.1","port":%d}]}\n' "$port" > "$dir/warren.json"
    "$warrend" --config "$dir/warren.json" > "$dir/warrend.log" 2>&1 &
    pid=$!
    if wait_port; then
        started=1
        break
    fi
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    pid=""
done
((started)) || fail "warrend did not start listening (tried $attempt ports)"

check() {
    echo "$1"
    "$PYTHON" - "$1" <<'PYEOF' || fail "unexpected summary"
import json, sys
r = json.loads(sys.argv[1])
bad = [k for k in ("published", "confirmed", "consumed") if not r[k] > 0]
cpu = r.get("broker_cpu") or {}
if cpu.get("messages") != r["consumed"] or cpu.get("user_s", -1) < 0 or cpu.get("system_s", -1) < 0:
    bad.append("broker_cpu")
if bad:
    sys.exit("perf-smoke: zero or missing " + ", ".join(bad))
PYEOF
}

out=$(timeout 30 "$perf" -p "$port" -x 1 -y 1 -c 100 -z 2 --pid "$pid" --json) ||
    fail "warren-perf failed (status $?)"
check "$out"
out=$(timeout 30 "$perf" -p "$port" -x 2 -y 2 -c 100 -q 50 -z 1 --unbatched --pid "$pid" --json) ||
    fail "warren-perf --unbatched failed (status $?)"
check "$out"

kill -TERM "$pid"
deadline=$((SECONDS + 15))
while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
    sleep 0.1
done
kill -0 "$pid" 2>/dev/null && fail "warrend did not exit within 15s of SIGTERM"
wait "$pid"
status=$?
pid=""
((status == 0)) || fail "warrend exited with status $status after SIGTERM"
echo "perf-smoke: ok"
