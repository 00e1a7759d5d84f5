#!/usr/bin/env bash
# Traces: OTLP/HTTP protobuf span ingest per core, then trace lookup and
# request-view latency with TOTAL_SPANS stored. See BENCHMARKS.md.
#
#   bench/traces.sh                          # defaults below; env vars override
#   TOTAL_SPANS=1000000 SKIP_BUILD=1 bench/traces.sh
#
# Bodies come from crates/sightline/examples/spans_load.rs: exports as the
# OpenTelemetry Python SDK's BatchSpanProcessor sends them (512 spans: 64
# FastAPI-like requests of 8 spans, semantic-convention attributes, a
# request_id on each server span, 2% failing with an exception event).
#
# 1. Throughput: Sightline pinned to core 0 (`taskset -c 0`), the generator
#    on core 1 POSTing BODIES distinct bodies over CONNS connections, each
#    once, retrying 503 (the server's memory budget: the part flusher shares
#    the core) with backoff as the OTLP exporters do; server CPU from /proc
#    until the flusher has caught up, so "spans per CPU-second" is per core
#    and includes writing the parts. (wrk cannot back off: against a 503 it
#    re-sends at once, and the server then spends its core draining bodies.)
# 2. Load: the generator POSTs the rest of TOTAL_SPANS (each body once),
#    unpinned; the head is left as it is (parts are flushed every ~95k
#    spans: 64 MiB of head).
# 3. Latency at TOTAL_SPANS: LOOKUPS random traces by id
#    (`GET /api/v1/traces/{id}`) and LOOKUPS random requests
#    (`GET /api/v1/requests/{id}`: logs, errors, the trace, route stats), one
#    at a time with curl; medians and p99 of curl's time_total. Also a search
#    (`?service=&status=error`) over the last hour.
# 4. ClickHouse (Debian 18.16) side by side: the same spans, the same trace
#    lookups (see the comment above that part). CLICKHOUSE=0 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
need taskset util-linux

TOTAL_SPANS=${TOTAL_SPANS:-10000000}
BODIES=${BODIES:-2000}
CONNS=${CONNS:-4}
LOOKUPS=${LOOKUPS:-200}
TRACES_PER_BODY=64
SPANS_PER_BODY=$((TRACES_PER_BODY * 8))
WORK=${WORK:-$(mktemp -d /var/tmp/sightline-traces.XXXXXX)}
# A reused work dir starts empty: old data would double the dataset.
rm -rf "$WORK/data" "$WORK/ch"
mkdir -p "$WORK"
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
TOKEN=bench-token
SL=
cleanup() {
  if [ -n "$SL" ]; then kill -TERM "$SL" 2>/dev/null || true; wait "$SL" 2>/dev/null || true; fi
  if [ "${KEEP:-0}" = 1 ]; then echo "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
TCK=$(getconf CLK_TCK)
END=$(date +%s)
TOTAL_BODIES=$(( (TOTAL_SPANS + SPANS_PER_BODY - 1) / SPANS_PER_BODY ))

# The throughput bodies are the last BODIES of the dataset: the load phase
# sends the ones before them.
LOAD_BODIES=$(( TOTAL_BODIES > BODIES ? TOTAL_BODIES - BODIES : 0 ))

cat > "$WORK/sightline.toml" <<EOF
listen = "127.0.0.1:$PORT"
data_dir = "$WORK/data"
api_token = "$TOKEN"
log_level = "warn"
[traces]
retention_days = 0
EOF
taskset -c 0 "$BIN" serve --config "$WORK/sightline.toml" >"$WORK/server.out" 2>"$WORK/server.err" &
SL=$!
wait_http "$URL/health"

echo "== throughput: $BODIES bodies of $SPANS_PER_BODY spans, $CONNS connections from core 1, server on core 0"
t0=$(cpu_ticks "$SL")
out=$(taskset -c 1 "$EX/spans_load" --bodies "$BODIES" --start-body "$LOAD_BODIES" --total-bodies "$TOTAL_BODIES" \
  --traces-per-body $TRACES_PER_BODY --end "$END" --url "$URL/v1/traces" --concurrency "$CONNS")
echo "$out"
# The spans are acknowledged; wait until the flusher has written the frozen
# heads (the unflushed count stops moving; the live head stays in memory).
prev=-1
for _ in $(seq 1 600); do
  left=$(curl -sf "$URL/metrics" | awk '/^sightline_span_store_unflushed_spans/{print $2}')
  [ "$left" = "$prev" ] && break
  prev=$left
  sleep 1
done
t1=$(cpu_ticks "$SL")
secs=$(echo "$out" | sed 's/.*"seconds":\([0-9.]*\).*/\1/')
cpu=$(echo "scale=3; ($t1 - $t0) / $TCK" | bc)
spans=$((BODIES * SPANS_PER_BODY))
echo "spans stored: $spans in ${secs}s wall, ${cpu} server CPU-s (incl. flushing to parts)"
echo "THROUGHPUT spans_per_s=$(echo "$spans / $secs" | bc) spans_per_cpu_s=$(echo "$spans / $cpu" | bc) rss_mb=$(rss_mb "$SL") hwm_mb=$(hwm_mb "$SL")"
kill -TERM "$SL"; wait "$SL" || true

# The rest of the dataset, unpinned, each body once.
"$BIN" serve --config "$WORK/sightline.toml" >>"$WORK/server.out" 2>>"$WORK/server.err" &
SL=$!
wait_http "$URL/health"
if [ "$LOAD_BODIES" -gt 0 ]; then
  echo "== load: $LOAD_BODIES more bodies ($((LOAD_BODIES * SPANS_PER_BODY)) spans)"
  "$EX/spans_load" --bodies "$LOAD_BODIES" --start-body 0 --total-bodies "$TOTAL_BODIES" \
    --traces-per-body $TRACES_PER_BODY --end "$END" --url "$URL/v1/traces" --concurrency 3
fi
stored=$(curl -sf "$URL/metrics" | awk '/^sightline_span_store_spans_total/{print $2}')
echo "== $stored spans written since restart (+$spans before); data dir $(du -sm "$WORK/data/traces" | cut -f1) MB, RSS $(rss_mb "$SL") MB"
curl -sf "$URL/metrics" | grep -E '^sightline_span_store_(parts|part_bytes|unflushed_spans) '

# lat_ms NAME URL_LIST_FILE [AUTH_HEADER]: one request at a time; prints median and p99 (ms).
lat_ms() {
  local name=$1 file=$2 auth=${3:-"Authorization: Bearer $TOKEN"}
  while read -r u; do
    curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -H "$auth" "$u"
  done <"$file" >"$WORK/$name.times"
  local bad
  bad=$(awk '$1 != 200' "$WORK/$name.times" | wc -l)
  awk '{print $2 * 1000}' "$WORK/$name.times" | sort -n | awk -v name="$name" -v bad="$bad" '
    { v[NR] = $1 } END { p = int(NR * 0.99 + 0.5); if (p < 1) p = 1
      printf "LATENCY %s n=%d non200=%d median_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
      name, NR, bad, v[int((NR + 1) / 2)], v[p], v[NR] }'
}
python3 - "$TOTAL_BODIES" "$TRACES_PER_BODY" "$LOOKUPS" "$URL" "$WORK" <<'EOF'
import random, sys
bodies, per, n, url, work = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
rnd = random.Random(42)
picks = [(rnd.randrange(bodies), rnd.randrange(per)) for _ in range(n)]
with open(f"{work}/traces.urls", "w") as f:
    for b, t in picks:
        f.write(f"{url}/api/v1/traces/{b:016x}{t:08x}5eed5eed\n")
with open(f"{work}/requests.urls", "w") as f:
    for b, t in picks:
        f.write(f"{url}/api/v1/requests/req-{b}-{t}\n")
with open(f"{work}/trace_ids", "w") as f:
    for b, t in picks:
        f.write(f"{b:016x}{t:08x}5eed5eed\n")
with open(f"{work}/search.urls", "w") as f:
    for _ in range(20):
        f.write(f"{url}/api/v1/traces?service=grading&status=error&start=-1h&limit=20\n")
EOF
lat_ms trace_lookup "$WORK/traces.urls"
lat_ms request_view "$WORK/requests.urls"
lat_ms search_errors "$WORK/search.urls"
echo "RSS after queries: $(rss_mb "$SL") MB (peak $(hwm_mb "$SL") MB)"

[ "${CLICKHOUSE:-1}" = 1 ] || exit 0
# ClickHouse 18.16 (Debian; ../shared/PEERS.md) with the columns of the
# OpenTelemetry Collector ClickHouse exporter's `otel_traces`, as far as 18.16
# can hold them: no DateTime64 (seconds + a nanoseconds column), no Map
# (attributes as JSON text), no per-column codecs (zstd server-wide), no skip
# indexes — so the exporter's bloom filter on TraceId cannot exist here.
# Two tables: `otel_traces` in the exporter's order (ServiceName, SpanName,
# time), where a TraceId lookup reads the whole TraceId column, and
# `traces_by_id` ordered by (TraceId, time), ClickHouse's best case for a
# lookup (the primary key). The same spans are inserted as JSONEachRow (the
# collector's translation is not timed); then the same trace lookups, one
# query each over the HTTP interface, every column as the trace view needs.
kill -TERM "$SL"; wait "$SL" || true; SL=
CH_PORT=$(free_port)
CH_PID=$(bench/clickhouse.sh "$WORK/ch" "$CH_PORT")
# Not a child of this shell (bench/clickhouse.sh started it): kill, no wait.
trap 'kill -TERM "$CH_PID" 2>/dev/null || true; cleanup' EXIT
wait_http "http://127.0.0.1:$CH_PORT/ping"
ch() { curl -sS --data-binary "$1" "http://127.0.0.1:$CH_PORT/"; }
COLS="Timestamp DateTime, TimestampNs UInt64, TraceId String, SpanId String, ParentSpanId String,
  TraceState String, SpanName LowCardinality(String), SpanKind LowCardinality(String),
  ServiceName LowCardinality(String), ResourceAttributes String, ScopeName String, ScopeVersion String,
  SpanAttributes String, Duration UInt64, StatusCode LowCardinality(String), StatusMessage String,
  Events Nested (Timestamp UInt64, Name String, Attributes String)"
ch "CREATE TABLE traces_by_id ($COLS) ENGINE = MergeTree PARTITION BY toDate(Timestamp) ORDER BY (TraceId, Timestamp)"
ch "CREATE TABLE otel_traces ($COLS) ENGINE = MergeTree PARTITION BY toDate(Timestamp) ORDER BY (ServiceName, SpanName, Timestamp)"
echo "== clickhouse: inserting the same $((TOTAL_BODIES * SPANS_PER_BODY)) spans"
c0=$(cpu_ticks "$CH_PID")
"$EX/spans_load" --bodies "$TOTAL_BODIES" --start-body 0 --total-bodies "$TOTAL_BODIES" \
  --traces-per-body $TRACES_PER_BODY --end "$END" --clickhouse \
  | curl -sS -X POST -T - "http://127.0.0.1:$CH_PORT/?query=INSERT%20INTO%20traces_by_id%20FORMAT%20JSONEachRow"
ch "INSERT INTO otel_traces SELECT * FROM traces_by_id"
sleep 30  # let background merges settle, as a running system would have
c1=$(cpu_ticks "$CH_PID")
for t in traces_by_id otel_traces; do
  echo "clickhouse $t: rows $(ch "SELECT count() FROM $t"), bytes on disk $(ch "SELECT sum(bytes) FROM system.parts WHERE active AND table = '$t'"), parts $(ch "SELECT count() FROM system.parts WHERE active AND table = '$t'")"
done
echo "clickhouse insert (both tables) + merges CPU-s $(echo "scale=1; ($c1 - $c0) / $TCK" | bc), RSS $(rss_mb "$CH_PID") MB"
for t in traces_by_id otel_traces; do
  while read -r id; do
    q="SELECT * FROM $t WHERE TraceId = '$id' ORDER BY TimestampNs FORMAT JSONEachRow"
    echo "http://127.0.0.1:$CH_PORT/?query=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$q")"
  done <"$WORK/trace_ids" >"$WORK/ch_$t.urls"
  lat_ms "clickhouse_trace_lookup_$t" "$WORK/ch_$t.urls" "X-Bench: 1"
done
