#!/usr/bin/env bash
# Metrics store: Sightline side by side with Prometheus 2.42 (Debian
# `prometheus`) on the same samples, on this machine. See BENCHMARKS.md and
# /work/shared/PEERS.md.
#
#   bench/metrics.sh                                # 10,000 series × 24 h at 15 s (57.6M samples)
#   SERIES=200 HOURS=3 RUNS=3 bench/metrics.sh      # a quick check
#   PEERS=prometheus SKIP_BUILD=1 bench/metrics.sh  # one peer only; no cargo build
#
# Knobs (env): SERIES HOURS INTERVAL (15s) CONC (connections, 4) BATCH (samples
# per request, 2000) RUNS (per query and peer, the first discarded) PEERS
# WORK (kept when given; a fresh temp dir otherwise, deleted unless KEEP=1)
# SKIP_BUILD=1 SL_FSYNC (always) SETTLE_MAX (s, 300) PROM_LOAD (auto |
# remote-write | backfill) SL_PORT PROM_PORT.
#
# 1. The dataset: crates/sightline/examples/metrics_load.rs, a deterministic
#    fleet of FastAPI-like instances (http_requests_total counters with
#    restarts, http_request_duration_seconds classic histograms with
#    prometheus_client's 15 buckets + _sum/_count, two gauges) over HOURS
#    ending now; both peers get the same samples (same --end and seed).
# 2. Ingest: each peer in turn is sent everything by remote write
#    (POST /api/v1/write, snappy protobuf, in time order, CONC connections with
#    series sharded by hash, BATCH samples per request). Server CPU is
#    utime+stime from /proc, so "samples per CPU-s" is per core. Prometheus
#    2.42 takes 24 h of history by remote write when it comes in time order
#    (checked: prometheus_tsdb_out_of_bound_samples_total). With PROM_LOAD=auto
#    it is backfilled with `promtool tsdb create-blocks-from openmetrics` from
#    the generator's OpenMetrics file if it refuses them anyway (said in the
#    output); PROM_LOAD=backfill forces that.
# 3. Settle: Sightline cuts 2 h blocks while it ingests (when its head spans
#    3 h); Prometheus compacts its head in the background: the script waits
#    until Prometheus's head spans ≤ 3 h and its block and compaction counts
#    stop changing (at most SETTLE_MAX s). Then bytes on disk ÷ samples, for the
#    whole data dir and for the blocks alone.
# 4. Memory: RSS after settling minus the RSS of the same server empty (just
#    started), ÷ active series.
# 5. Queries: query_range over the whole range (step 60 s, and 15 s when that
#    stays ≤ 11,000 points) of five dashboard queries, RUNS times per peer
#    alternating peers, the first run discarded; median ms timed by curl to the
#    last byte. The two answers are compared (same series, same timestamps,
#    values within 1e-6 relative): a loud warning if not.
set -euo pipefail
cd "$(dirname "$0")/.."

SERIES=${SERIES:-10000}
HOURS=${HOURS:-24}
INTERVAL=${INTERVAL:-15s}
CONC=${CONC:-4}
BATCH=${BATCH:-2000}
RUNS=${RUNS:-7}
[ "$RUNS" -ge 2 ] || { echo "RUNS must be at least 2 (the first run of each query is discarded)"; exit 1; }
PEERS=${PEERS:-"sightline prometheus"}
SL_FSYNC=${SL_FSYNC:-always}
SETTLE_MAX=${SETTLE_MAX:-300}
PROM_LOAD=${PROM_LOAD:-auto}
PROM=${PROM:-/usr/bin/prometheus}
PROMTOOL=${PROMTOOL:-/usr/bin/promtool}

runs() { [[ " $PEERS " == *" $1 "* ]]; }
. bench/lib.sh
need "$PROM" prometheus
need curl curl
[ -x "$EX/metrics_load" ] || { echo "no load generator at $EX/metrics_load (build: cargo build --release --example metrics_load)"; exit 1; }
if runs sightline; then [ -x "$BIN" ] || { echo "no binary at $BIN"; exit 1; }; fi
case "$PROM_LOAD" in auto|remote-write|backfill) ;; *) echo "PROM_LOAD must be auto, remote-write or backfill"; exit 1 ;; esac

if [ -n "${WORK:-}" ]; then OWN_WORK=0; else OWN_WORK=1; WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/sightline-metrics.XXXXXX"); fi
mkdir -p "$WORK"
rm -rf "$WORK/sl" "$WORK/prom" "$WORK/data.om"
SL_PORT=${SL_PORT:-$(free_port)}
PROM_PORT=${PROM_PORT:-$(free_port)}
TOKEN=bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
SL_PID="" PROM_PID="" GEN_PID=""

stop_pid() {  # PID: TERM, then KILL after 20 s
  local p=$1 i
  [ -n "$p" ] || return 0
  kill -TERM "$p" 2>/dev/null || return 0
  for i in $(seq 1 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
}
cleanup() {
  trap - EXIT INT TERM
  [ -n "$GEN_PID" ] && kill -TERM "$GEN_PID" 2>/dev/null
  stop_pid "$SL_PID"; stop_pid "$PROM_PID"
  if [ "$OWN_WORK" = 1 ] && [ "${KEEP:-0}" != 1 ]; then rm -rf "$WORK"; else echo "work dir kept: $WORK"; fi
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 130' INT TERM

TCK=$(getconf CLK_TCK)
calc() { awk "BEGIN{printf \"%.${2:-1}f\", ($1)}"; }
now() { date +%s.%N; }
jget() { python3 -c 'import json, sys; v = json.load(open(sys.argv[1])); [v := v[k] for k in sys.argv[2:]]; print(v)' "$@"; }
# metric URL NAME: the value of an unlabelled sample on a /metrics page (0 when absent).
# (awk reads the whole page: an early exit would fail curl with SIGPIPE, and pipefail the script)
metric() { curl -sf "$1" | awk -v n="$2" '$1 == n && !f {print $2; f = 1} END {if (!f) print 0}'; }
median() { sort -g | awk '{a[NR]=$1} END{if (NR == 0) print 0; else print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

declare -A R
NAME_sl=Sightline NAME_pr=Prometheus

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r)"
echo "== versions: $("$BIN" --version 2>/dev/null || echo "sightline: none") ($(git log -1 --format='%h %s' 2>/dev/null | cut -c1-70)$(git diff --quiet HEAD -- crates 2>/dev/null || echo ', uncommitted changes')); $("$PROM" --version 2>&1 | head -1); $("$PROMTOOL" --version 2>&1 | head -1)"
echo "== load before start: $(cut -d' ' -f1-3 /proc/loadavg) (other work on these cores skews every number: see 'CPU s of everything else')"

# ---------------------------------------------------------------- dataset
GEN=("$EX/metrics_load" --series "$SERIES" --hours "$HOURS" --interval "$INTERVAL")
"${GEN[@]}" --describe > "$WORK/describe.json"
END_S=$(( $(jget "$WORK/describe.json" end_ms) / 1000 ))
GEN+=(--end "$END_S")
"${GEN[@]}" --describe > "$WORK/describe.json"
NSERIES=$(jget "$WORK/describe.json" series)
NSAMPLES=$(jget "$WORK/describe.json" samples)
START_S=$(( $(jget "$WORK/describe.json" start_ms) / 1000 ))
echo "== dataset: $NSERIES series ($(jget "$WORK/describe.json" instances) instances), $(jget "$WORK/describe.json" steps) steps of $INTERVAL, $NSAMPLES samples, $(date -u -d @"$START_S" +%FT%TZ) .. $(date -u -d @"$END_S" +%FT%TZ)"
echo "   remote write: $CONC connections, $BATCH samples per request; Sightline fsync = $SL_FSYNC (acknowledged = on disk); Prometheus acknowledges before its WAL is fsynced"

# ---------------------------------------------------------------- servers
start_sightline() {
  cat > "$WORK/sightline.toml" <<EOF
api_token = "$TOKEN"
fsync = "$SL_FSYNC"

[metrics]
retention = "30d"
EOF
  "$BIN" serve --config "$WORK/sightline.toml" --listen "127.0.0.1:$SL_PORT" --data-dir "$WORK/sl" --log-level warn > "$WORK/sl.log" 2>&1 &
  SL_PID=$!
  wait_http "http://127.0.0.1:$SL_PORT/health"
}
start_prometheus() {
  printf 'global:\n  scrape_interval: 15s\nscrape_configs: []\n' > "$WORK/prometheus.yml"
  "$PROM" --config.file="$WORK/prometheus.yml" --web.enable-remote-write-receiver \
    --storage.tsdb.path="$WORK/prom" --storage.tsdb.retention.time=30d \
    --web.listen-address="127.0.0.1:$PROM_PORT" >> "$WORK/prom.log" 2>&1 &
  PROM_PID=$!
  PROM_STARTED=$(date +%s)
  wait_http "http://127.0.0.1:$PROM_PORT/-/ready"
}
SL_METRICS="http://127.0.0.1:$SL_PORT/metrics"
PR_METRICS="http://127.0.0.1:$PROM_PORT/metrics"

runs sightline && start_sightline
runs prometheus && start_prometheus
sleep 3  # let both finish starting before the empty RSS
if runs sightline; then R[sl.rss_empty]=$(rss_kb "$SL_PID"); fi
if runs prometheus; then R[pr.rss_empty]=$(rss_kb "$PROM_PID"); fi

# ---------------------------------------------------------------- ingest
# load KEY LABEL PID URL [TOKEN]: the generator against one server; fills R[KEY.*]. Returns the generator's status.
load() {
  local k=$1 label=$2 pid=$3 url=$4 tok=${5:-} c0 c1 m0 m1 t0 t1 rc=0 args=()
  [ -n "$tok" ] && args=(--token "$tok")
  echo "-- [$(date +%T)] $label: ${NSAMPLES} samples by remote write to $url"
  c0=$(cpu_ticks "$pid"); m0=$(machine_ticks); t0=$(now)
  # In the background, so that a signal to this script is handled at once.
  "${GEN[@]}" --url "$url" "${args[@]}" --concurrency "$CONC" --batch "$BATCH" > "$WORK/load-$k.json" 2> "$WORK/load-$k.err" &
  GEN_PID=$!
  wait "$GEN_PID" || rc=$?
  GEN_PID=""
  t1=$(now); c1=$(cpu_ticks "$pid"); m1=$(machine_ticks)
  LOAD_T1=$t1; LOAD_C0=$c0
  if [ "$rc" != 0 ]; then
    echo "   the generator failed (exit $rc):"; sed 's/^/   | /' "$WORK/load-$k.err" | tail -5
    return "$rc"
  fi
  R[$k.secs]=$(calc "$t1 - $t0" 2)
  R[$k.sent]=$(jget "$WORK/load-$k.json" samples_sent)
  R[$k.rate]=$(calc "${R[$k.sent]} / ${R[$k.secs]}" 0)
  R[$k.cpu_load]=$(calc "($c1 - $c0) / $TCK" 2)
  R[$k.cores]=$(calc "${R[$k.cpu_load]} / ${R[$k.secs]}" 2)
  R[$k.per_cpu]=$(calc "${R[$k.cpu_load]} > 0 ? ${R[$k.sent]} / ${R[$k.cpu_load]} : 0" 0)
  R[$k.gen_cpu]=$(jget "$WORK/load-$k.json" client_cpu_s)
  R[$k.cpu_other]=$(calc "($m1 - $m0 - ($c1 - $c0)) / $TCK - ${R[$k.gen_cpu]}" 2)
  R[$k.non2xx]=$(jget "$WORK/load-$k.json" non2xx)
  R[$k.requests]=$(jget "$WORK/load-$k.json" requests)
  R[$k.rss_load]=$(rss_kb "$pid"); R[$k.hwm]=$(hwm_kb "$pid")
  echo "   ${R[$k.sent]} samples in ${R[$k.secs]} s (${R[$k.rate]}/s), ${R[$k.requests]} requests, non-2xx ${R[$k.non2xx]} (retried), server CPU ${R[$k.cpu_load]} s, generator CPU ${R[$k.gen_cpu]} s"
  if [ -s "$WORK/load-$k.err" ]; then sed 's/^/   generator: /' "$WORK/load-$k.err" | head -5; fi
}

PROM_BACKFILLED=0
backfill_prometheus() {
  local t0 t1 ut
  echo "-- [$(date +%T)] Prometheus: backfill with promtool instead (the same samples, written as OpenMetrics by the generator)"
  stop_pid "$PROM_PID"; PROM_PID=""
  rm -rf "$WORK/prom"
  "${GEN[@]}" --openmetrics "$WORK/data.om" > "$WORK/om.json"
  echo "   OpenMetrics file: $(jget "$WORK/om.json" openmetrics bytes) bytes, $(jget "$WORK/om.json" openmetrics samples) samples"
  t0=$(now)
  ut=$( { TIMEFORMAT='%U %S'; time "$PROMTOOL" tsdb create-blocks-from openmetrics "$WORK/data.om" "$WORK/prom" > "$WORK/promtool.log" 2>&1; } 2>&1 )
  t1=$(now)
  rm -f "$WORK/data.om"
  R[pr.secs]=$(calc "$t1 - $t0" 2)
  R[pr.sent]=$NSAMPLES
  R[pr.rate]=$(calc "$NSAMPLES / ${R[pr.secs]}" 0)
  R[pr.cpu_load]=$(echo "$ut" | awk '{printf "%.2f", $1 + $2}')
  R[pr.cores]=$(calc "${R[pr.cpu_load]} / ${R[pr.secs]}" 2)
  R[pr.per_cpu]=$(calc "${R[pr.cpu_load]} > 0 ? $NSAMPLES / ${R[pr.cpu_load]} : 0" 0)
  echo "   promtool: ${R[pr.secs]} s, CPU ${R[pr.cpu_load]} s ($(grep -c . "$WORK/promtool.log") log lines)"
  start_prometheus
  PROM_BACKFILLED=1
  LOAD_T1=$(now); LOAD_C0=$(cpu_ticks "$PROM_PID")
  R[pr.rss_load]=$(rss_kb "$PROM_PID"); R[pr.hwm]=$(hwm_kb "$PROM_PID")
}

echo
if runs sightline; then
  load sl Sightline "$SL_PID" "http://127.0.0.1:$SL_PORT/api/v1/write" "$TOKEN" || { echo "Sightline refused the load: see above"; tail -5 "$WORK/sl.log"; exit 1; }
  SL_T1=$LOAD_T1; SL_C0=$LOAD_C0
fi
if runs prometheus; then
  if [ "$PROM_LOAD" = backfill ]; then
    backfill_prometheus
  elif ! load pr Prometheus "$PROM_PID" "http://127.0.0.1:$PROM_PORT/api/v1/write"; then
    if [ "$PROM_LOAD" = auto ] && grep -qiE "out of bounds|too old|out of order" "$WORK/load-pr.err"; then
      echo "   NOTE: Prometheus $("$PROM" --version 2>&1 | head -1 | awk '{print $3}') refused history by remote write (above)."
      backfill_prometheus
    else
      echo "Prometheus refused the load: see above"; tail -5 "$WORK/prom.log"; exit 1
    fi
  fi
  PR_T1=$LOAD_T1; PR_C0=$LOAD_C0
  R[pr.refused]=$(metric "$PR_METRICS" 'prometheus_tsdb_out_of_bound_samples_total{type="float"}')
fi

# ---------------------------------------------------------------- settle
echo
if runs sightline; then
  # Blocks are cut by the writer during the load; make sure nothing moves.
  last="" stable=0
  for _ in $(seq 1 30); do
    cur=$(metric "$SL_METRICS" sightline_tsdb_blocks)
    if [ "$cur" = "$last" ]; then stable=$((stable + 1)); else stable=0; last=$cur; fi
    [ "$stable" -ge 2 ] && break
    sleep 1
  done
  R[sl.settle]=$(calc "$(now) - $SL_T1" 1)
  R[sl.cpu_all]=$(calc "($(cpu_ticks "$SL_PID") - $SL_C0) / $TCK" 2)
fi
if runs prometheus; then
  echo "-- [$(date +%T)] waiting for Prometheus to compact its head (at most ${SETTLE_MAX}s)"
  last="" stable=0 settled=0
  while :; do
    page=$(curl -sf "$PR_METRICS")
    span=$(echo "$page" | awk '$1 == "prometheus_tsdb_head_max_time" {mx = $2} $1 == "prometheus_tsdb_head_min_time" {mn = $2} END {s = (mx - mn) / 1000; printf "%.0f", (s < 0 ? 0 : s)}')
    cur=$(echo "$page" | awk '$1 == "prometheus_tsdb_blocks_loaded" || $1 == "prometheus_tsdb_compactions_total" || $1 ~ /^prometheus_tsdb_compaction_chunk_range_seconds_count/ {printf "%s ", $2}')
    if [ "$cur" = "$last" ]; then stable=$((stable + 1)); else stable=0; last=$cur; fi
    # Its compaction loop first runs a minute after start (backfilled blocks wait for it).
    if { [ "$PROM_BACKFILLED" = 1 ] || [ "$(calc "$span <= 10800" 0)" = 1 ]; } && [ "$stable" -ge 3 ] \
       && [ $(( $(date +%s) - PROM_STARTED )) -ge 70 ]; then settled=1; break; fi
    if [ "$(calc "$(now) - $PR_T1 > $SETTLE_MAX" 0)" = 1 ]; then break; fi
    sleep 5
  done
  R[pr.settle]=$(calc "$(now) - $PR_T1" 1)
  R[pr.cpu_all]=$(calc "($(cpu_ticks "$PROM_PID") - $PR_C0) / $TCK + ${R[pr.cpu_load]} * $PROM_BACKFILLED" 2)
  if [ "$settled" = 1 ]; then
    echo "   settled ${R[pr.settle]} s after its load ended: head spans ${span} s, $(echo "$page" | awk '$1 == "prometheus_tsdb_blocks_loaded" {print $2}') blocks"
  else
    echo "   WARNING: not settled after ${SETTLE_MAX}s (head spans ${span} s); storage figures include an uncompacted head"
  fi
fi

# ---------------------------------------------------------------- storage and memory
du_b() { du -sb "$@" 2>/dev/null | awk '{s += $1} END {print s + 0}'; }
if runs sightline; then
  page=$(curl -sf "$SL_METRICS")
  m() { echo "$page" | awk -v n="$1" '$1 == n {print $2; f = 1} END {if (!f) print 0}'; }
  R[sl.appended]=$(m sightline_tsdb_samples_appended_total)
  R[sl.series]=$(m sightline_tsdb_series)
  R[sl.blocks]=$(m sightline_tsdb_blocks)
  R[sl.head_samples]=$(m sightline_tsdb_head_samples)
  R[sl.block_samples]=$(m sightline_tsdb_blocks_samples)
  R[sl.block_bytes_m]=$(m sightline_tsdb_blocks_bytes)
  R[sl.refused]=$(calc "$(m sightline_tsdb_out_of_order_samples_total) + $(m sightline_tsdb_duplicate_samples_total)" 0)
  R[sl.disk]=$(du_b "$WORK/sl")
  R[sl.block_bytes]=$(du_b "$WORK/sl/metrics/blocks")
  R[sl.rss]=$(rss_kb "$SL_PID")
fi
if runs prometheus; then
  page=$(curl -sf "$PR_METRICS")
  m() { echo "$page" | awk -v n="$1" '$1 == n {print $2; f = 1} END {if (!f) print 0}'; }
  R[pr.appended]=$(m 'prometheus_tsdb_head_samples_appended_total{type="float"}')
  R[pr.series]=$(m prometheus_tsdb_head_series)
  R[pr.blocks]=$(m prometheus_tsdb_blocks_loaded)
  R[pr.disk]=$(du_b "$WORK/prom")
  blockdirs=$(find "$WORK/prom" -mindepth 1 -maxdepth 1 -type d -regextype posix-extended -regex '.*/[0-9A-HJKMNP-TV-Z]{26}' | sort)
  R[pr.block_bytes]=$( [ -n "$blockdirs" ] && du_b $blockdirs || echo 0)
  R[pr.block_samples]=$(python3 -c 'import json, sys; print(sum(json.load(open(d + "/meta.json"))["stats"]["numSamples"] for d in sys.argv[1:]))' $blockdirs)
  R[pr.head_samples]=$(calc "$NSAMPLES - ${R[pr.block_samples]}" 0)
  R[pr.rss]=$(rss_kb "$PROM_PID")
fi
for k in sl pr; do
  [ -n "${R[$k.disk]:-}" ] || continue
  R[$k.total]=$(calc "${R[$k.block_samples]} + ${R[$k.head_samples]}" 0)
  R[$k.b_per_sample]=$(calc "${R[$k.disk]} / $NSAMPLES" 3)
  R[$k.b_per_sample_blocks]=$(calc "${R[$k.block_samples]} > 0 ? ${R[$k.block_bytes]} / ${R[$k.block_samples]} : 0" 3)
  R[$k.b_per_series]=$(calc "${R[$k.series]} > 0 ? (${R[$k.rss]} - ${R[$k.rss_empty]}) * 1024 / ${R[$k.series]} : 0" 0)
  R[$k.rss_mb]=$(calc "${R[$k.rss]} / 1024" 1); R[$k.rss_empty_mb]=$(calc "${R[$k.rss_empty]} / 1024" 1)
  R[$k.rss_load_mb]=$(calc "${R[$k.rss_load]} / 1024" 1); R[$k.hwm_mb]=$(calc "${R[$k.hwm]} / 1024" 1)
  R[$k.disk_mb]=$(calc "${R[$k.disk]} / 1048576" 2); R[$k.block_mb]=$(calc "${R[$k.block_bytes]} / 1048576" 2)
done
[ -n "${R[sl.block_samples]:-}" ] && R[sl.b_per_sample_metric]=$(calc "${R[sl.block_samples]} > 0 ? ${R[sl.block_bytes_m]} / ${R[sl.block_samples]} : 0" 3)
if [ -n "${R[sl.total]:-}" ] && [ "${R[sl.total]}" != "$NSAMPLES" ]; then
  echo "WARNING: Sightline holds ${R[sl.total]} samples (blocks + head), $NSAMPLES were sent (appended ${R[sl.appended]}, refused ${R[sl.refused]})"
fi
if [ -n "${R[pr.appended]:-}" ] && [ "$PROM_BACKFILLED" = 0 ] && [ "${R[pr.appended]%.*}" != "$NSAMPLES" ] && [ "$(calc "${R[pr.appended]}" 0)" != "$NSAMPLES" ]; then
  echo "WARNING: Prometheus appended ${R[pr.appended]} samples, $NSAMPLES were sent"
fi
if [ "${R[pr.refused]:-0}" != 0 ]; then echo "WARNING: Prometheus counted ${R[pr.refused]} out-of-bound samples"; fi

# ---------------------------------------------------------------- queries
echo
echo "== [$(date +%T)] query_range over the whole range, $RUNS runs per peer (first discarded), alternating peers; median ms and peak RSS during the query's runs"
QUERIES=(
  'sum by (path) (rate(http_requests_total[5m]))'
  'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))'
  'sum(rate(http_requests_total{status=~"5.."}[5m])) / sum(rate(http_requests_total[5m]))'
  'topk(5, sum by (instance) (rate(http_requests_total[5m])))'
  'avg_over_time(process_resident_memory_bytes[1h])'
)
QNAMES=("requests/s by path" "p99 latency (histogram)" "5xx ratio" "top 5 instances" "avg RSS over 1h")
STEPS=(60)
[ $(( (END_S - START_S) / 15 + 1 )) -le 11000 ] && STEPS+=(15)
# qtime KEY OUT QUERY STEP: one timed query_range; prints seconds (or FAIL).
qtime() {
  local k=$1 out=$2 q=$3 step=$4 url auth=() r
  if [ "$k" = sl ]; then url="http://127.0.0.1:$SL_PORT/api/v1/query_range"; auth=(-H "Authorization: Bearer $TOKEN")
  else url="http://127.0.0.1:$PROM_PORT/api/v1/query_range"; fi
  r=$(curl -sS -o "$out" -w '%{http_code} %{time_total}' "${auth[@]}" --get --data-urlencode "query=$q" \
      --data-urlencode "start=$START_S" --data-urlencode "end=$END_S" --data-urlencode "step=$step" "$url") || r="000 0"
  if [ "${r%% *}" != 200 ]; then echo FAIL; else echo "${r#* }"; fi
}
cols=(); runs sightline && cols+=(sl); runs prometheus && cols+=(pr)
pid_of() { if [ "$1" = sl ]; then echo "$SL_PID"; else echo "$PROM_PID"; fi; }
# Peak RSS per query: the kernel resets VmHWM to the current RSS on "5" > clear_refs.
reset_hwm() { echo 5 > "/proc/$1/clear_refs" 2>/dev/null || true; }
QROWS=()
DISAGREE=0
qi=0
for qn in "${!QUERIES[@]}"; do
  q=${QUERIES[$qn]}
  for step in "${STEPS[@]}"; do
    qi=$((qi + 1))
    declare -A T=([sl]="" [pr]="")
    for k in "${cols[@]}"; do reset_hwm "$(pid_of "$k")"; done
    for run in $(seq 1 "$RUNS"); do
      order=("${cols[@]}"); if [ $((run % 2)) = 0 ] && [ "${#cols[@]}" = 2 ]; then order=(pr sl); fi
      for k in "${order[@]}"; do
        s=$(qtime "$k" "$WORK/q$qi-$k.json" "$q" "$step")
        if [ "$s" = FAIL ]; then
          echo "   WARNING: ${k/sl/Sightline}${k/pr/} query failed: $q (step ${step}s): $(head -c 300 "$WORK/q$qi-$k.json")"
          T[$k]="FAIL"
        elif [ "$run" -gt 1 ] && [ "${T[$k]}" != FAIL ]; then T[$k]+="$s "; fi
      done
    done
    for k in "${cols[@]}"; do
      R[$k.qpeak$qi]=$(calc "$(hwm_kb "$(pid_of "$k")") / 1024" 0)
      if [ "$(calc "${R[$k.qpeak$qi]} > ${R[$k.qpeak]:-0}" 0)" = 1 ]; then R[$k.qpeak]=${R[$k.qpeak$qi]}; R[$k.qpeak_at]="$q, step ${step}s"; fi
      if [ "${T[$k]}" = FAIL ]; then R[$k.q$qi]=FAIL; else R[$k.q$qi]=$(echo "${T[$k]}" | tr ' ' '\n' | grep . | median | awk '{printf "%.1f", $1 * 1000}'); fi
    done
    # The answers must agree.
    verdict="-"
    if [ "${#cols[@]}" = 2 ] && [ "${R[sl.q$qi]}" != FAIL ] && [ "${R[pr.q$qi]}" != FAIL ]; then
      same=""; cmp -s "$WORK/q$qi-sl.json" "$WORK/q$qi-pr.json" && same=", byte-identical JSON"
      verdict=$(python3 - "$WORK/q$qi-sl.json" "$WORK/q$qi-pr.json" <<'PY'
import json, math, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
def series(r):
    d = r.get("data", {})
    if r.get("status") != "success" or d.get("resultType") != "matrix":
        return None
    return {tuple(sorted(s["metric"].items())): s["values"] for s in d["result"]}
sa, sb = series(a), series(b)
if sa is None or sb is None:
    print("DIFFER: not both a matrix"); sys.exit()
points = sum(len(v) for v in sb.values())
problems = []
if set(sa) != set(sb):
    only_a = [dict(k) for k in set(sa) - set(sb)][:2]
    only_b = [dict(k) for k in set(sb) - set(sa)][:2]
    problems.append(f"series {len(sa)} vs {len(sb)} (only Sightline: {only_a}; only Prometheus: {only_b})")
bad, worst = 0, None
for key in set(sa) & set(sb):
    va, vb = dict(sa[key]), dict(sb[key])
    if set(va) != set(vb):
        problems.append(f"{dict(key)}: {len(va)} vs {len(vb)} points, first only-in-one: {sorted(set(va) ^ set(vb))[:3]}")
    for t in set(va) & set(vb):
        x, y = float(va[t]), float(vb[t])
        if math.isnan(x) and math.isnan(y):
            continue
        if not (x == y or abs(x - y) <= 1e-6 * max(abs(x), abs(y)) or abs(x - y) < 1e-12):
            bad += 1
            if worst is None:
                worst = (dict(key), t, va[t], vb[t])
if bad:
    problems.append(f"{bad} values differ, e.g. {worst}")
print(("DIFFER: " + "; ".join(problems[:3])) if problems else f"agree ({len(sb)} series, {points} points)")
PY
)
      verdict+=$same
      if [[ "$verdict" == DIFFER* ]]; then
        DISAGREE=$((DISAGREE + 1))
        echo "   !!!!!!!! WARNING: the answers DIFFER for $q (step ${step}s): ${verdict#DIFFER: }"
      fi
    fi
    printf '   %-95s %4ss  Sightline %8s ms %6s MB  Prometheus %8s ms %6s MB  %s\n' "$q" "$step" \
      "${R[sl.q$qi]:--}" "${R[sl.qpeak$qi]:--}" "${R[pr.q$qi]:--}" "${R[pr.qpeak$qi]:--}" "$verdict"
    QROWS+=("q$qi|ms, ${QNAMES[$qn]}, step ${step}s|lo")
  done
done
for k in "${cols[@]}"; do
  pid=$(pid_of "$k")
  R[$k.rss_q_mb]=$(calc "$(rss_kb "$pid") / 1024" 1)
done

# ---------------------------------------------------------------- table
ROWS=(
  "sent|samples loaded|"
  "secs|ingest: wall s|rw"
  "rate|ingest: samples/s (wall)|rw"
  "cpu_load|ingest: server CPU s|rw"
  "cores|ingest: server cores busy|"
  "per_cpu|ingest: samples per server CPU-s|rw"
  "non2xx|ingest: non-2xx answers (retried)|"
  "gen_cpu|ingest: generator CPU s|"
  "cpu_other|ingest: CPU s of everything else|"
  "settle|s from load end to settled|"
  "cpu_all|server CPU s, load start to settled|rw"
  "series|active series|"
  "blocks|blocks|"
  "block_samples|samples in blocks|"
  "head_samples|samples in the head (Prom.: sent-blocks)|"
  "refused|samples refused (Prom.: out of bounds)|"
  "disk_mb|data dir MB (total)|lo"
  "b_per_sample|bytes per sample, whole data dir|lo"
  "block_mb|blocks MB|lo"
  "b_per_sample_blocks|bytes per sample, blocks only|lo"
  "b_per_sample_metric|bytes/sample, sightline_tsdb_blocks_*|"
  "rss_empty_mb|RSS MB, empty server|lo"
  "hwm_mb|peak RSS MB (VmHWM) after load|rw"
  "rss_load_mb|RSS MB right after load|rw"
  "rss_mb|RSS MB settled|rw"
  "b_per_series|RSS bytes per active series (settled-empty)|rw"
  "${QROWS[@]}"
  "qpeak|peak RSS MB during a query (max)|lo"
  "rss_q_mb|RSS MB after the queries|lo"
)
echo
echo "== results: $NSERIES series × $(jget "$WORK/describe.json" steps) steps of $INTERVAL = $NSAMPLES samples; remote write, $CONC connections, $BATCH samples/request; ratio = Sightline / Prometheus"
[ "$PROM_BACKFILLED" = 1 ] && echo "   NOTE: Prometheus was BACKFILLED with promtool (not remote write): its ingest rows are promtool's, its head is empty"
echo "   machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $("$BIN" --version 2>/dev/null || true); $("$PROM" --version 2>&1 | head -1)"
line=$(printf '%-44s' metric); for k in "${cols[@]}"; do line+=$(printf ' | %12s' "$(eval echo "\$NAME_$k")"); done
[ "${#cols[@]}" = 2 ] && line+=$(printf ' | %8s' ratio)
echo "$line"
for row in "${ROWS[@]}"; do
  IFS='|' read -r m label better <<<"$row"
  line=$(printf '%-44s' "$label"); any=0
  for k in "${cols[@]}"; do v=${R[$k.$m]:-}; [ -n "$v" ] && any=1; line+=$(printf ' | %12s' "${v:--}"); done
  [ "$any" = 1 ] || continue
  # "rw" rows compare remote-write ingest: no ratio when Prometheus was backfilled.
  if [ "$better" = rw ] && [ "$PROM_BACKFILLED" = 1 ]; then better=""; fi
  if [ "${#cols[@]}" = 2 ] && [ -n "$better" ] && [[ "${R[sl.$m]:-}" =~ ^[0-9.]+$ ]] && [[ "${R[pr.$m]:-}" =~ ^[0-9.]+$ ]]; then
    if [ "$(calc "${R[pr.$m]} > 0" 0)" = 1 ]; then line+=$(printf ' | %8s' "$(calc "${R[sl.$m]} / ${R[pr.$m]}" 2)"); fi
  fi
  echo "$line"
done
echo
for i in "${!QUERIES[@]}"; do printf '%-26s %s\n' "${QNAMES[$i]}:" "${QUERIES[$i]}"; done
for k in "${cols[@]}"; do
  if [ -n "${R[$k.qpeak_at]:-}" ]; then echo "$(eval echo "\$NAME_$k")'s highest peak RSS during queries: ${R[$k.qpeak]} MB, in: ${R[$k.qpeak_at]}"; fi
done
if [ "$DISAGREE" -gt 0 ]; then
  echo
  echo "!!!!!!!! WARNING: $DISAGREE query answers DIFFER between Sightline and Prometheus (see above; answers in $WORK/q*-{sl,pr}.json)"
  KEEP=1
fi
