#!/usr/bin/env bash
# Log query benchmark: Sightline side by side with ClickHouse holding the same
# generated structlog lines (spread over one day), on this machine.
# See BENCHMARKS.md.
#
#   bench/query.sh                      # 10M lines (defaults below)
#   LINES=100000000 bench/query.sh      # the 100M run (~31 GB raw, ~2 h here)
#   LINES=1000000 RUNS=3 bench/query.sh # a quick check
#
# Both servers are loaded over HTTP, stopped and restarted with the page cache
# dropped for the cold request_id lookup; every other figure is the median of
# RUNS warm runs, timed by curl (time to the last byte of the answer).
set -euo pipefail
cd "$(dirname "$0")/.."

LINES=${LINES:-10000000}
SPAN=${SPAN:-86399}
RUNS=${RUNS:-7}
BODY_LINES=${BODY_LINES:-5000}
SL_PORT=${SL_PORT:-14318}
CH_PORT=${CH_PORT:-18123}
. bench/lib.sh
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/var/tmp}/sightline-qbench.XXXXXX")}
mkdir -p "$WORK"
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
TOKEN=bench-token-0123456789

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
if [ ! -s "$WORK/lines.ndjson" ]; then
  echo "== generating $LINES lines over ${SPAN}s in $WORK"
  "$EX/gen_lines" "$LINES" "$WORK/lines.ndjson" "$SPAN"
  mkdir -p "$WORK/nd"
  split -l "$BODY_LINES" -d -a 6 "$WORK/lines.ndjson" "$WORK/nd/b"
fi
if [ ! -d "$WORK/tsv" ]; then
  # ClickHouse 18.16's visitParamExtract* read `"key":value` only (no space after
  # the colon) and TabSeparated unescapes backslashes: rewrite both for it
  # (preparation, not timed; the raw line it keeps is then a few bytes shorter).
  mkdir -p "$WORK/tsv"
  sed 's/": /":/g; s/\\/\\\\/g' "$WORK/lines.ndjson" | split -l "$BODY_LINES" -d -a 6 - "$WORK/tsv/b"
fi
echo "raw: $(stat -c %s "$WORK/lines.ndjson") bytes"
# Ids to look up: one for the warm runs, another for the cold one.
ID_WARM=$(sed -n "$((LINES / 2))p" "$WORK/lines.ndjson" | grep -o '"request_id": "[^"]*"' | cut -d'"' -f4)
ID_COLD=$(sed -n "$((LINES * 7 / 10))p" "$WORK/lines.ndjson" | grep -o '"request_id": "[^"]*"' | cut -d'"' -f4)
DAY_START=2026-11-25T00:00:00Z
DAY_END=2026-11-26T00:00:00Z

drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || echo "(cannot drop the page cache: cold numbers are warm)"; }
median() { sort -g | awk '{a[NR]=$1} END{print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

printf '[storage]\nretention_days = 0\n[query]\nmax_groups = 1000000\n' > "$WORK/sightline.toml"
start_sightline() {
  "$BIN" serve --config "$WORK/sightline.toml" --listen "127.0.0.1:$SL_PORT" --data-dir "$WORK/sl" \
    --api-token "$TOKEN" --log-level warn > "$WORK/sl.out" 2>&1 &
  SL_PID=$!; PIDS+=("$SL_PID")
  wait_http "http://127.0.0.1:$SL_PORT/health"
}
stop_sightline() { kill -TERM "$SL_PID"; wait "$SL_PID" || true; }
start_ch() {
  CH_PID=$(bench/clickhouse.sh "$WORK/ch" "$CH_PORT"); PIDS+=("$CH_PID")
  wait_http "http://127.0.0.1:$CH_PORT/ping"
}
stop_ch() { kill -TERM "$CH_PID"; while kill -0 "$CH_PID" 2>/dev/null; do sleep 0.2; done; }
ch() { curl -sS --data-binary "$1" "http://127.0.0.1:$CH_PORT/"; }

# sl_time ARGS… → seconds for one GET /api/v1/logs… (curl -G args)
sl_time() {
  curl -sS -o "$WORK/last.json" -w '%{time_total}\n' -G -H "Authorization: Bearer $TOKEN" "$@"
}
ch_time() {
  curl -sS -o "$WORK/last.json" -w '%{time_total}\n' --data-binary "$1" "http://127.0.0.1:$CH_PORT/"
}

if [ ! -d "$WORK/sl" ]; then
  echo "== loading Sightline over HTTP ($BODY_LINES-line bodies, 4 clients)"
  start_sightline
  t0=$(date +%s.%N)
  ls "$WORK/nd" | xargs -P 4 -I{} curl -sf -o /dev/null --retry 30 --retry-delay 1 \
    -H 'Content-Type: application/x-ndjson' --data-binary "@$WORK/nd/{}" \
    "http://127.0.0.1:$SL_PORT/api/v1/logs/ingest?service=bench"
  echo "loaded in $(awk "BEGIN{print $(date +%s.%N) - $t0}") s"
  stop_sightline
fi
echo "sightline data dir: $(du -sb "$WORK/sl" | cut -f1) bytes"

if [ ! -d "$WORK/ch" ]; then
  echo "== loading ClickHouse (every field: typed columns + the raw line)"
  start_ch
  ch "CREATE TABLE logs_all (timestamp DateTime, service String, level String, event String, request_id String, flow_id String, user_id String, exception String, raw String) ENGINE = MergeTree PARTITION BY toDate(timestamp) ORDER BY (service, timestamp)"
  ch "CREATE TABLE raw_in (line String) ENGINE = Null"
  ch "CREATE MATERIALIZED VIEW mv_all TO logs_all AS SELECT parseDateTimeBestEffort(visitParamExtractString(line, 'timestamp')) AS timestamp, visitParamExtractString(line, 'service') AS service, visitParamExtractString(line, 'level') AS level, visitParamExtractString(line, 'event') AS event, visitParamExtractString(line, 'request_id') AS request_id, visitParamExtractString(line, 'flow_id') AS flow_id, visitParamExtractString(line, 'user_id') AS user_id, visitParamExtractString(line, 'exception') AS exception, line AS raw FROM raw_in"
  ls "$WORK/tsv" | xargs -P 4 -I{} curl -sf -o /dev/null --data-binary "@$WORK/tsv/{}" \
    "http://127.0.0.1:$CH_PORT/?query=INSERT%20INTO%20raw_in%20FORMAT%20TabSeparated"
  ch "OPTIMIZE TABLE logs_all FINAL"
  echo "clickhouse rows: $(ch 'SELECT count() FROM logs_all'), of service worker: $(ch "SELECT count() FROM logs_all WHERE service = 'worker'"), on $(ch 'SELECT min(timestamp), max(timestamp) FROM logs_all')"
  stop_ch
fi

# The queries, as pairs: Sightline (curl -G args) and ClickHouse SQL.
SL_URL="http://127.0.0.1:$SL_PORT/api/v1/logs"
declare -a NAMES SLQ CHQ
add() { NAMES+=("$1"); SLQ+=("$2"); CHQ+=("$3"); }
add "request_id lookup (warm)" "q=request_id:$ID_WARM" \
  "SELECT timestamp, service, level, event, raw FROM logs_all WHERE request_id = '$ID_WARM' ORDER BY timestamp DESC LIMIT 100 FORMAT JSON"
add "word in text: count TimeoutError" "q=TimeoutError | count" \
  "SELECT count() FROM logs_all WHERE positionCaseInsensitive(event, 'TimeoutError') > 0 OR positionCaseInsensitive(exception, 'TimeoutError') > 0 FORMAT JSON"
add "word in text: newest 100" "q=TimeoutError" \
  "SELECT timestamp, service, level, event, raw FROM logs_all WHERE positionCaseInsensitive(event, 'TimeoutError') > 0 OR positionCaseInsensitive(exception, 'TimeoutError') > 0 ORDER BY timestamp DESC LIMIT 100 FORMAT JSON"
add "count by (_time:1m, level), 24h" "q=* | count by (_time:1m, level)" \
  "SELECT toStartOfMinute(timestamp) AS m, level, count() FROM logs_all WHERE timestamp >= '2026-11-25 00:00:00' AND timestamp < '2026-11-26 00:00:00' GROUP BY m, level FORMAT JSON"
add "top 10 events of one service" "q=service:worker | top 10 by (event)" \
  "SELECT event, count() AS c FROM logs_all WHERE service = 'worker' GROUP BY event ORDER BY c DESC LIMIT 10 FORMAT JSON"
add "errors of one service, newest 100" "q=service:worker level:>=error" \
  "SELECT timestamp, service, level, event, raw FROM logs_all WHERE service = 'worker' AND level IN ('error', 'critical') ORDER BY timestamp DESC LIMIT 100 FORMAT JSON"

echo
echo "== cold request_id lookup (servers restarted, page cache dropped)"
drop_caches
start_sightline
c_sl=$(sl_time --data-urlencode "q=request_id:$ID_COLD" --data-urlencode "start=$DAY_START" --data-urlencode "end=$DAY_END" "$SL_URL")
n_sl=$(grep -o '"request_id":"' "$WORK/last.json" | wc -l)
stop_sightline
drop_caches
start_ch
c_ch=$(ch_time "SELECT timestamp, service, level, event, raw FROM logs_all WHERE request_id = '$ID_COLD' ORDER BY timestamp DESC LIMIT 100 FORMAT JSON")
stop_ch
awk -v a="$c_sl" -v b="$c_ch" -v n="$n_sl" 'BEGIN{printf "%-38s sightline %8.1f ms (%d rows)   clickhouse %8.1f ms   ratio %.2f\n", "request_id lookup (cold)", a*1000, n, b*1000, a/b}'

echo
echo "== warm queries: median of $RUNS runs"
start_sightline
start_ch
for i in "${!NAMES[@]}"; do
  # One untimed run to warm both.
  sl_time --data-urlencode "${SLQ[$i]}" --data-urlencode "start=$DAY_START" --data-urlencode "end=$DAY_END" "$SL_URL" >/dev/null
  ch_time "${CHQ[$i]}" >/dev/null
  a=$(for _ in $(seq "$RUNS"); do sl_time --data-urlencode "${SLQ[$i]}" --data-urlencode "start=$DAY_START" --data-urlencode "end=$DAY_END" "$SL_URL"; done | median)
  cp "$WORK/last.json" "$WORK/sl-$i.json"
  b=$(for _ in $(seq "$RUNS"); do ch_time "${CHQ[$i]}"; done | median)
  cp "$WORK/last.json" "$WORK/ch-$i.json"
  awk -v n="${NAMES[$i]}" -v a="$a" -v b="$b" 'BEGIN{printf "%-38s sightline %8.1f ms   clickhouse %8.1f ms   ratio %.2f\n", n, a*1000, b*1000, a/b}'
done
# The same answers: the word count, and the top events of one service.
python3 - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
sl, ch = json.load(open(f"{w}/sl-1.json")), json.load(open(f"{w}/ch-1.json"))
print(f"answers: TimeoutError count sightline {sl['series'][0]['value']} / clickhouse {ch['data'][0]['count()']}")
sl, ch = json.load(open(f"{w}/sl-4.json")), json.load(open(f"{w}/ch-4.json"))
a = [(s['labels']['event'], s['value']) for s in sl['series']]
b = [(r['event'], int(r['c'])) for r in ch['data']]
print(f"answers: top events of worker {'equal' if a == b else 'DIFFER'}: {a[:3]} …")
PY
# Facets: Sightline samples the newest facet_rows (100k) matching rows; the
# ClickHouse query computes top values of the same fields over all of them.
a=$(for _ in $(seq "$RUNS"); do curl -sS -o /dev/null -w '%{time_total}\n' -G -H "Authorization: Bearer $TOKEN" \
  --data-urlencode "q=service:worker" "http://127.0.0.1:$SL_PORT/api/v1/logs/fields"; done | median)
b=$(for _ in $(seq "$RUNS"); do ch_time "SELECT topK(10)(level), topK(10)(event), topK(10)(user_id), topK(10)(flow_id) FROM logs_all WHERE service = 'worker' FORMAT JSON"; done | median)
awk -v a="$a" -v b="$b" 'BEGIN{printf "%-38s sightline %8.1f ms   clickhouse %8.1f ms   ratio %.2f\n", "facets of one service", a*1000, b*1000, a/b}'
echo
echo "sightline rss after queries: $(rss_mb "$SL_PID") MB (peak $(hwm_mb "$SL_PID") MB); clickhouse rss: $(rss_mb "$CH_PID") MB"
echo "answers kept in $WORK (sl-*.json)"
