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
#    unpinned; then the head is left as it is (parts are flushed every
#    256k spans).
# 3. Latency at TOTAL_SPANS: LOOKUPS random traces by id
#    (`GET /api/v1/traces/{id}`) and LOOKUPS random requests
#    (`GET /api/v1/requests/{id}`: logs, errors, the trace, route stats), one
#    at a time with curl; medians and p99 of curl's time_total. Also a search
#    (`?service=&status=error`) over the last hour.
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
mkdir -p "$WORK"
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
TOKEN=bench-token
SL=
cleanup() {
  [ -n "$SL" ] && kill -TERM "$SL" 2>/dev/null && wait "$SL" 2>/dev/null || true
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

# lat_ms NAME URL_LIST_FILE: one request at a time; prints median and p99 (ms).
lat_ms() {
  local name=$1 file=$2
  while read -r u; do
    curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -H "Authorization: Bearer $TOKEN" "$u"
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
with open(f"{work}/search.urls", "w") as f:
    for _ in range(20):
        f.write(f"{url}/api/v1/traces?service=grading&status=error&start=-1h&limit=20\n")
EOF
lat_ms trace_lookup "$WORK/traces.urls"
lat_ms request_view "$WORK/requests.urls"
lat_ms search_errors "$WORK/search.urls"
echo "RSS after queries: $(rss_mb "$SL") MB (peak $(hwm_mb "$SL") MB)"
