#!/usr/bin/env bash
# UI benchmark: server time to render each page and its weight, with LINES
# log lines (default 10M, spread over the last 24 h) and ISSUES issues
# (default 10k, two events each) in the store. See BENCHMARKS.md.
#
#   bench/ui.sh                               # 10M lines, 10k issues
#   LINES=1000000 ISSUES=1000 RUNS=3 bench/ui.sh   # a quick check
#
# Each page is fetched RUNS times, one request at a time, after one untimed
# warm-up; the figure is the median of curl's time to the last byte over
# loopback (the server's time: the page is rendered in full before the first
# byte leaves). Weight is the HTML as sent with gzip and without.
set -euo pipefail
cd "$(dirname "$0")/.."

LINES=${LINES:-10000000}
ISSUES=${ISSUES:-10000}
RUNS=${RUNS:-7}
SPAN=${SPAN:-86000}
BODY_LINES=${BODY_LINES:-5000}
SL_PORT=${SL_PORT:-14328}
. bench/lib.sh
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/var/tmp}/sightline-uibench.XXXXXX")}
mkdir -p "$WORK"
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
TOKEN=bench-token-0123456789
KEY=0123456789abcdef0123456789abcdef
BASE="http://127.0.0.1:$SL_PORT"
median() { sort -g | awk '{a[NR]=$1} END{print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
cat > "$WORK/sightline.toml" <<TOML
[storage]
retention_days = 0
[[projects]]
name = "bench"
id = 7
keys = ["$KEY"]
TOML
"$BIN" serve --config "$WORK/sightline.toml" --listen "127.0.0.1:$SL_PORT" --data-dir "$WORK/sl" \
  --api-token "$TOKEN" --log-level warn > "$WORK/sl.out" 2>&1 &
SL_PID=$!; PIDS+=("$SL_PID")
wait_http "$BASE/health"

if [ ! -f "$WORK/loaded" ]; then
  # Lines ending a minute ago, so "the last 24 hours" holds all of them.
  echo "== generating and loading $LINES lines over the last ${SPAN}s"
  GEN_START_UNIX=$(( $(date +%s) - SPAN - 60 )) "$EX/gen_lines" "$LINES" "$WORK/lines.ndjson" "$SPAN"
  mkdir -p "$WORK/nd"
  split -l "$BODY_LINES" -d -a 6 "$WORK/lines.ndjson" "$WORK/nd/b"
  t0=$(date +%s.%N)
  ls "$WORK/nd" | xargs -P 4 -I{} curl -sf -o /dev/null --retry 30 --retry-delay 1 \
    -H 'Content-Type: application/x-ndjson' --data-binary "@$WORK/nd/{}" "$BASE/api/v1/logs/ingest?service=bench"
  echo "lines loaded in $(awk "BEGIN{print $(date +%s.%N) - $t0}") s"
  echo "== sending $ISSUES issues (2 events each) through the Sentry store endpoint"
  t0=$(date +%s.%N)
  python3 - "$BASE" "$KEY" "$ISSUES" tests/fixtures/python-sdks/sentry/*-event.envelope.gz <<'PY'
import gzip, http.client, json, sys, threading, time, urllib.parse, uuid
base, key, n, fixtures = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
# A real event from the recorded fixtures as the template (its stack, request, tags).
template = None
for f in fixtures:
    for line in gzip.open(f).read().split(b"\n"):
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if isinstance(ev, dict) and "exception" in ev:
            template = ev
            break
    if template:
        break
assert template, "no event in the fixtures"
u = urllib.parse.urlparse(base)
auth = f"Sentry sentry_version=7, sentry_key={key}, sentry_client=bench/1"
now = time.time()
def send(lo, hi):
    c = http.client.HTTPConnection(u.hostname, u.port)
    for i in range(lo, hi):
        for k in range(2):
            ev = dict(template)
            ev["event_id"] = uuid.uuid4().hex
            ev["timestamp"] = now - (i * 7 + k * 3600) % 86000
            ev["fingerprint"] = [f"bench-issue-{i}"]
            ev["exception"] = {"values": [dict(template["exception"]["values"][-1],
                                               type=f"BenchError{i % 97}", value=f"bench failure {i}")]}
            ev["tags"] = dict(ev.get("tags") or {}, request_id=f"req-bench-{i}-{k}")
            body = json.dumps(ev).encode()
            c.request("POST", "/api/7/store/", body, {"Content-Type": "application/json", "X-Sentry-Auth": auth})
            r = c.getresponse(); r.read()
            assert r.status == 200, (r.status, r.reason)
threads = [threading.Thread(target=send, args=(n * t // 4, n * (t + 1) // 4)) for t in range(4)]
[t.start() for t in threads]; [t.join() for t in threads]
PY
  echo "events sent in $(awk "BEGIN{print $(date +%s.%N) - $t0}") s"
  # Its own metrics and health as a target, so the metric and health pages have data.
  curl -sf -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d "{\"service\":\"sightline\",\"url\":\"$BASE\",\"interval\":\"5s\"}" "$BASE/api/v1/targets" >/dev/null
  sleep 12
  touch "$WORK/loaded"
fi
echo "data dir: $(du -sb "$WORK/sl" | cut -f1) bytes; issues: $(curl -sf -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/issues?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')"

curl -sf -c "$WORK/cookies" -o /dev/null -d "token=$TOKEN&next=/ui/" "$BASE/ui/login"
REQ=$(sed -n "$((LINES / 2))p" "$WORK/lines.ndjson" | grep -o '"request_id": "[^"]*"' | cut -d'"' -f4)
FLOW=$(grep -m1 -o '"flow_id": "retake-[^"]*"' <(tail -n 100000 "$WORK/lines.ndjson") | cut -d'"' -f4)
ISSUE=$(curl -sf -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/issues?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["issues"][0]["id"])')
enc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }

PAGES=(
  "/ui/"
  "/ui/issues"
  "/ui/issues?status=all&sort=count"
  "/ui/issues/$ISSUE"
  "/ui/logs"
  "/ui/logs?range=24h"
  "/ui/logs?range=24h&q=$(enc 'service:worker level:>=error')"
  "/ui/logs?range=24h&q=$(enc "request_id:\"$REQ\"")"
  "/ui/requests/$REQ"
  "/ui/flows"
  "/ui/flows/$FLOW"
  "/ui/traces"
  "/ui/metrics?q=$(enc 'sum by (route) (rate(sightline_http_requests_total[5m]))')"
  "/ui/metrics?service=sightline"
  "/ui/health"
  "/ui/settings"
)
printf '\n%-58s %10s %10s %12s %10s\n' "page" "median ms" "max ms" "html bytes" "gzip bytes"
for p in "${PAGES[@]}"; do
  code=$(curl -s -b "$WORK/cookies" -o "$WORK/page.html" -w '%{http_code}' "$BASE$p")
  [ "$code" = 200 ] || { echo "$p answered $code"; head -c 400 "$WORK/page.html"; exit 1; }
  times=$(for _ in $(seq "$RUNS"); do curl -s -b "$WORK/cookies" -o /dev/null -w '%{time_total}\n' "$BASE$p"; done)
  med=$(echo "$times" | median)
  max=$(echo "$times" | sort -g | tail -1)
  raw=$(curl -s -b "$WORK/cookies" -o /dev/null -w '%{size_download}' "$BASE$p")
  gz=$(curl -s -b "$WORK/cookies" -H 'Accept-Encoding: gzip' -o /dev/null -w '%{size_download}' "$BASE$p")
  printf '%-58s %10.1f %10.1f %12d %10d\n' "${p:0:58}" "$(awk "BEGIN{print $med*1000}")" "$(awk "BEGIN{print $max*1000}")" "$raw" "$gz"
done
echo
echo "assets (fetched once, then cached for a year: their URLs carry a content hash):"
for a in app.css app.js htmx.min.js uPlot.iife.min.js uPlot.min.css; do
  raw=$(curl -s -o /dev/null -w '%{size_download}' "$BASE/ui/assets/$a")
  gz=$(curl -s -H 'Accept-Encoding: gzip' -o /dev/null -w '%{size_download}' "$BASE/ui/assets/$a")
  printf '  %-22s %8d bytes, %7d gzip\n' "$a" "$raw" "$gz"
done
echo "server RSS: $(rss_mb "$SL_PID") MB (peak $(hwm_mb "$SL_PID") MB)"
