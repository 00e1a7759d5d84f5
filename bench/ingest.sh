#!/usr/bin/env bash
# Ingest benchmark: Sightline side by side with ClickHouse on the same
# generated structlog lines, on this machine. See BENCHMARKS.md.
#
#   bench/ingest.sh                 # defaults below; env vars override
#   LINES=200000 DURATION=10 bench/ingest.sh
#
# Load comes from wrk (one thread, CONNS connections) posting pre-built bodies
# of BODY_LINES lines; the server's own CPU time is read from /proc to report
# lines per CPU-second ("per core"). Both peers run on 127.0.0.1 and are
# stopped by PID at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

LINES=${LINES:-1000000}
BODY_LINES=${BODY_LINES:-1000}
DURATION=${DURATION:-20}
CONNS=${CONNS:-8}
SL_PORT=${SL_PORT:-14318}
CH_PORT=${CH_PORT:-18123}
. bench/lib.sh
need wrk wrk
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/var/tmp}/sightline-bench.XXXXXX")}
mkdir -p "$WORK"
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== generating $LINES lines in $WORK"
"$EX/gen_lines" "$LINES" "$WORK/lines.ndjson"
RAW=$(stat -c %s "$WORK/lines.ndjson")
echo "raw: $RAW bytes, $(awk "BEGIN{printf \"%.1f\", $RAW/$LINES}") B/line"
mkdir -p "$WORK/nd" "$WORK/tsv"
split -l "$BODY_LINES" -d -a 5 "$WORK/lines.ndjson" "$WORK/nd/b"
# ClickHouse's TabSeparated input unescapes backslashes: double them so the raw
# line arrives intact; its visitParamExtract* read `"key":value` only (no space
# after the colon), so drop that space (preparation, not timed).
sed 's/": /":/g; s/\\/\\\\/g' "$WORK/lines.ndjson" | split -l "$BODY_LINES" -d -a 5 - "$WORK/tsv/b"
NB=$(ls "$WORK/nd" | wc -l)

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
TCK=$(getconf CLK_TCK)

# run_wrk NAME URL BODYDIR CONTENT_TYPE PID → prints one result line
run_wrk() {
  local name=$1 url=$2 dir=$3 ctype=$4 pid=$5
  local c0 c1 out req non2xx secs p50 p99 ok lines
  c0=$(cpu_ticks "$pid")
  out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" --timeout 60s -s bench/wrk_bodies.lua "$url" -- "$dir" "$NB" "$ctype")
  c1=$(cpu_ticks "$pid")
  read -r req non2xx secs p50 p99 < <(echo "$out" | awk '/^BENCH/{for(i=2;i<=6;i++){split($i,a,"="); printf "%s ", a[2]} print ""}')
  ok=$((req - non2xx))
  lines=$((ok * BODY_LINES))
  awk -v n="$name" -v l="$lines" -v s="$secs" -v c="$(( c1 - c0 ))" -v t="$TCK" -v e="$non2xx" -v p50="$p50" -v p99="$p99" -v rss="$(rss_mb "$pid")" -v hwm="$(hwm_mb "$pid")" 'BEGIN{
    cpu=c/t; printf "%-28s %10.0f lines/s  %10.0f lines/cpu-s  server cpu %5.2f cores  p50 %7.1f ms  p99 %7.1f ms  non-2xx %d  rss %s MB (peak %s MB)\n", n, l/s, (cpu>0?l/cpu:0), cpu/s, p50, p99, e, rss, hwm }'
}


# Generated rows are dated 2026-11-25: retention off so nothing is dropped mid-run.
printf '[storage]\nretention_days = 0\n' > "$WORK/sightline.toml"
start_sightline() {
  "$BIN" serve --config "$WORK/sightline.toml" --listen "127.0.0.1:$SL_PORT" --data-dir "$1" --log-level warn > "$1.out" 2>&1 &
  SL_PID=$!; PIDS+=("$SL_PID")
  wait_http "http://127.0.0.1:$SL_PORT/health"
}
stop_sightline() { kill -TERM "$SL_PID"; wait "$SL_PID" || true; }

ch() { curl -sS --data-binary "$1" "http://127.0.0.1:$CH_PORT/"; }
CH_TYPED="CREATE TABLE logs_typed (timestamp DateTime, service String, level String, event String, request_id String, flow_id String, user_id String, method String, path String, exception String) ENGINE = MergeTree PARTITION BY toDate(timestamp) ORDER BY (service, timestamp)"
CH_ALL="CREATE TABLE logs_all (timestamp DateTime, service String, level String, event String, request_id String, flow_id String, user_id String, exception String, raw String) ENGINE = MergeTree PARTITION BY toDate(timestamp) ORDER BY (service, timestamp)"
CH_RAW="CREATE TABLE raw_in (line String) ENGINE = Null"
CH_MV="CREATE MATERIALIZED VIEW mv_all TO logs_all AS SELECT parseDateTimeBestEffort(visitParamExtractString(line, 'timestamp')) AS timestamp, visitParamExtractString(line, 'service') AS service, visitParamExtractString(line, 'level') AS level, visitParamExtractString(line, 'event') AS event, visitParamExtractString(line, 'request_id') AS request_id, visitParamExtractString(line, 'flow_id') AS flow_id, visitParamExtractString(line, 'user_id') AS user_id, visitParamExtractString(line, 'exception') AS exception, line AS raw FROM raw_in"
CH_TYPED_URL="http://127.0.0.1:$CH_PORT/?query=INSERT%20INTO%20logs_typed%20FORMAT%20JSONEachRow&input_format_skip_unknown_fields=1&date_time_input_format=best_effort"
CH_ALL_URL="http://127.0.0.1:$CH_PORT/?query=INSERT%20INTO%20raw_in%20FORMAT%20TabSeparated"
ch_reset() {
  for t in mv_all raw_in logs_all logs_typed; do ch "DROP TABLE IF EXISTS $t" >/dev/null; done
  ch "$CH_TYPED"; ch "$CH_ALL"; ch "$CH_RAW"; ch "$CH_MV"
}

echo
echo "== in-process ingest path (no HTTP), 1 producer thread"
(cd "$WORK" && "$EX/ingest_inprocess" "$WORK/lines.ndjson" 1)

echo
echo "== HTTP ingest throughput: wrk -t1 -c$CONNS -d${DURATION}s, $BODY_LINES lines per request"
start_sightline "$WORK/sl-throughput"
run_wrk "sightline (fsync always)" "http://127.0.0.1:$SL_PORT/api/v1/logs/ingest?service=bench" "$WORK/nd" application/x-ndjson "$SL_PID"
stop_sightline

CH_PID=$(bench/clickhouse.sh "$WORK/ch" "$CH_PORT"); PIDS+=("$CH_PID")
wait_http "http://127.0.0.1:$CH_PORT/ping"
ch_reset
run_wrk "clickhouse typed columns" "$CH_TYPED_URL" "$WORK/nd" application/x-ndjson "$CH_PID"
run_wrk "clickhouse every field" "$CH_ALL_URL" "$WORK/tsv" text/tab-separated-values "$CH_PID"

echo
echo "== memory at a steady 50,000 lines/s for 30 s (paced by bench/rss_at_rate.py)"
start_sightline "$WORK/sl-rate"
python3 bench/rss_at_rate.py "http://127.0.0.1:$SL_PORT/api/v1/logs/ingest?service=bench" "$SL_PID" "$WORK/nd" 50000 30
stop_sightline

echo
echo "== storage: the same $LINES unique lines loaded once into each"
ch_reset
start_sightline "$WORK/sl-storage"
post_all() { ls "$2"/b* | xargs -P 4 -I{} curl -sS -o /dev/null -w '%{http_code}\n' --data-binary @{} "$1" | sort | uniq -c | awk '$2 !~ /^2/{bad=1} END{exit bad}'; }
post_all "http://127.0.0.1:$SL_PORT/api/v1/logs/ingest?service=bench" "$WORK/nd"
stop_sightline
SL_BYTES=$(find "$WORK/sl-storage/parts" -name '*.parquet' -printf '%s\n' | awk '{s+=$1} END{print s+0}')
post_all "$CH_TYPED_URL" "$WORK/nd"
post_all "$CH_ALL_URL" "$WORK/tsv"
ch "OPTIMIZE TABLE logs_typed FINAL" >/dev/null; ch "OPTIMIZE TABLE logs_all FINAL" >/dev/null
CH_TYPED_BYTES=$(ch "SELECT sum(bytes) FROM system.parts WHERE active AND table = 'logs_typed'")
CH_ALL_BYTES=$(ch "SELECT sum(bytes) FROM system.parts WHERE active AND table = 'logs_all'")
CH_ROWS=$(ch "SELECT count() FROM logs_all")
for row in "sightline (every field)|$SL_BYTES" "clickhouse typed columns|$CH_TYPED_BYTES" "clickhouse every field|$CH_ALL_BYTES"; do
  IFS='|' read -r n b <<<"$row"
  awk -v n="$n" -v b="$b" -v raw="$RAW" -v l="$LINES" 'BEGIN{printf "%-28s %12d bytes  %6.1f B/line  raw/%.1f\n", n, b, b/l, raw/b}'
done
echo "clickhouse rows in logs_all: $CH_ROWS"
echo "work dir: $WORK"
