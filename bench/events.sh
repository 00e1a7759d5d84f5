#!/usr/bin/env bash
# Sentry event ingestion: Sightline side by side with Bugsink (PyPI `bugsink`)
# on the same real sentry-sdk 2.75.0 error envelopes, on this machine, with the
# same client (wrk). See /work/shared/PEERS.md and BENCHMARKS.md.
#
#   bench/events.sh                           # defaults below; env vars override
#   DURATION=20 CONNS=8 bench/events.sh
#   PEERS=bugsink SKIP_BUILD=1 bench/events.sh  # one peer only; no cargo build
#
# Bodies: BODIES envelopes built from tests/fixtures/python-sdks/sentry/*-event
# .envelope.gz, each with a fresh event_id (envelope header and event), current
# timestamps, its item `length` fixed, gzipped at level 9 like the SDK, and sent
# with the SDK's headers to POST /api/42/envelope/ (key 0123…ef, project 42).
# Each wrk run starts where the previous one stopped, so every request carries
# an event_id not sent before (a warning is printed if a run wraps around).
#
# Per peer: a throughput run (wrk -t1 -cCONNS -dDURATION), then polling until
# the events stored stop growing (Bugsink digests in the background: its
# backlog drains after the load ends), then a low-load run (wrk -c1 for
# LOW_DURATION) for latency. Server CPU is read from /proc (utime+stime of the
# server's whole process tree, reaped children included), so "events per
# CPU-second" is per core. Sightline runs twice: pinned to core 0 with
# `taskset -c 0` (wrk on core 1), and unpinned like Bugsink.
set -euo pipefail
cd "$(dirname "$0")/.."

BODIES=${BODIES:-100000}
DURATION=${DURATION:-20}
LOW_DURATION=${LOW_DURATION:-10}
CONNS=${CONNS:-8}
DRAIN_MAX=${DRAIN_MAX:-900}
SL_PORT=${SL_PORT:-14318}
BS_PORT=${BS_PORT:-18000}
BS_WORKERS=${BS_WORKERS:-5}
PEERS=${PEERS:-"sightline-pinned sightline bugsink"}
KEY=0123456789abcdef0123456789abcdef
PROJECT=42
SDK=sentry.python/2.75.0
BS_VENV=${BS_VENV:-$HOME/.cache/sightline-bench/bugsink-venv}
BS_VERSION=${BS_VERSION:-2.6.2}

runs() { [[ " $PEERS " == *" $1 "* ]]; }
if runs sightline || runs sightline-pinned; then
  . bench/lib.sh
else  # Bugsink only: the helpers without the release build
  rss_mb() { awk '/VmRSS/{printf "%.0f", $2/1024}' "/proc/$1/status"; }
  hwm_mb() { awk '/VmHWM/{printf "%.0f", $2/1024}' "/proc/$1/status"; }
  wait_http() { for _ in $(seq 1 600); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "no answer from $1"; exit 1; }
  need() { command -v "$1" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "$2" >/dev/null; }; }
fi
need wrk wrk
need sqlite3 sqlite3
need taskset util-linux

WORK=${WORK:-$(mktemp -d /var/tmp/sightline-events.XXXXXX)}
mkdir -p "$WORK"
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  if [ "${KEEP:-0}" = 1 ]; then echo "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

TCK=$(getconf CLK_TCK)
# The PIDs given and all their descendants.
tree_pids() {
  ps -e -o pid=,ppid= | awk -v roots="$*" '
    BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) keep[r[i]] = 1 }
    { parent[$1] = $2 }
    END { do { more = 0; for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; more = 1 } } while (more)
          for (p in keep) print p }'
}
# utime+stime+cutime+cstime of a process tree, in clock ticks.
tree_ticks() {
  local p t=0 v
  for p in $(tree_pids "$@"); do
    v=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12+$13+$14+$15}') || v=0
    t=$((t + ${v:-0}))
  done
  echo "$t"
}
# Sum of a /proc/PID/status field (VmRSS, VmHWM) over a process tree, in MB.
tree_mb() {
  local field=$1 p kb=0 v; shift
  for p in $(tree_pids "$@"); do
    v=$(awk -v f="$field:" '$1 == f {print $2}' "/proc/$p/status" 2>/dev/null) || v=0
    kb=$((kb + ${v:-0}))
  done
  echo $((kb / 1024))
}
now() { date +%s.%N; }
# Busy clock ticks of the whole machine (all processes), from /proc/stat.
machine_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9; exit}' /proc/stat; }
calc() { awk "BEGIN{printf \"%.${2:-1}f\", ($1)}"; }

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== load before start: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the 2 cores skews every number)"

# ---------------------------------------------------------------- bodies
echo "== [$(date +%T)] building $BODIES envelopes in $WORK/bodies (not timed)"
mkdir -p "$WORK/bodies"
python3 - "$WORK/bodies" "$BODIES" tests/fixtures/python-sdks/sentry/*-event.envelope.gz <<'EOF'
import datetime, gzip, json, multiprocessing, os, sys, uuid

out, count, sources = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
templates = []
for path in sources:
    lines = gzip.open(path).read().split(b"\n")
    header = json.loads(lines[0])
    items, k = [], 1
    while k < len(lines) and lines[k]:
        item_header = json.loads(lines[k])
        payload = lines[k + 1]
        if "length" in item_header:  # length-framed payloads may hold newlines
            rest = b"\n".join(lines[k + 1:])
            payload = rest[:item_header["length"]]
            k += 1 + payload.count(b"\n")
        items.append((item_header, payload))
        k += 2
    templates.append((header, items))

def dumps(obj):  # the SDK's own serialization
    return json.dumps(obj, allow_nan=False, separators=(",", ":")).encode()

# Each template is serialized once with same-length placeholders for the
# event_id and the timestamps, so every body only needs two replacements and
# the items' `length` stays right.
ID, STAMP = "@" * 32, "#" * 27  # uuid4().hex, "%Y-%m-%dT%H:%M:%S.%fZ"
frames = []
for header, items in templates:
    parts = [dumps(dict(header, event_id=ID, sent_at=STAMP))]
    for item_header, payload in items:
        if item_header.get("type") == "event":
            payload = dumps(dict(json.loads(payload), event_id=ID, timestamp=STAMP))
        item_header = dict(item_header)
        if "length" in item_header:
            item_header["length"] = len(payload)
        parts += [dumps(item_header), payload]
    frames.append(b"\n".join(parts) + b"\n")

def build(n):
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    body = frames[n % len(frames)].replace(ID.encode(), uuid.uuid4().hex.encode())
    return gzip.compress(body.replace(STAMP.encode(), stamp.encode()), 9, mtime=0)

def write(n):
    name = "probe" if n < 0 else "b%05d" % n
    with open(os.path.join(out, name), "wb") as f:
        f.write(build(n))

with multiprocessing.Pool() as pool:
    pool.map(write, range(-1, count), chunksize=500)
total = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
print(f"{len(templates)} envelope templates, {count} bodies, {total / (count + 1):.0f} B/body gzipped")
EOF

HDRS=("Content-Encoding: gzip"
      "X-Sentry-Auth: Sentry sentry_key=$KEY, sentry_version=7, sentry_client=$SDK"
      "User-Agent: $SDK"
      "Accept-Encoding: identity")
CURL_HDRS=(-H "Content-Type: application/x-sentry-envelope")
for h in "${HDRS[@]}"; do CURL_HDRS+=(-H "$h"); done
NEXT=0  # the first body not sent yet to the server under test

# probe URL: one envelope (its own event_id) must answer 200 {"id": …}
probe() {
  local code
  code=$(curl -sS -o "$WORK/probe.out" -w '%{http_code}' "${CURL_HDRS[@]}" --data-binary @"$WORK/bodies/probe" "$1") || true
  if [ "$code" != 200 ] || ! grep -q '"id"' "$WORK/probe.out"; then
    echo "envelope endpoint $1 answered $code: $(head -c 300 "$WORK/probe.out")"; return 1
  fi
}

# wrk_run CONNS SECONDS URL [PREFIX…]: one wrk run from body NEXT; sets W_* and WRK_CPU.
wrk_run() {
  local conns=$1 secs=$2 url=$3 t; shift 3
  W_requests=0 W_non2xx=0 W_seconds=1 W_p50_ms=0 W_p99_ms=0 W_sockerr=0
  t=$( { TIMEFORMAT='%U %S'; time WRK_FIRST=$NEXT "$@" wrk -t1 -c"$conns" -d"${secs}s" --timeout 60s \
        -s bench/wrk_bodies.lua "$url" -- "$WORK/bodies" "$BODIES" application/x-sentry-envelope "${HDRS[@]}" \
        > "$WORK/wrk.out" 2> "$WORK/wrk.err"; } 2>&1 )
  WRK_CPU=$(echo "$t" | awk '{printf "%.2f", $1+$2}')
  eval "$(sed -n 's/^BENCH //p' "$WORK/wrk.out" | tr ' ' '\n' | grep -E '^[a-z0-9_]+=[0-9.]+$' | sed 's/^/W_/')"
  if [ $((NEXT + W_requests + conns)) -gt "$BODIES" ]; then
    echo "   WARNING: this run wrapped around the $BODIES bodies: event_ids were sent twice (raise BODIES)"
  fi
  NEXT=$(( (NEXT + W_requests + conns) % BODIES ))
}

# bench_peer KEY LABEL URL COUNT_FN PENDING_FN WRK_PREFIX ROOT_PIDS…
# COUNT_FN prints events stored; PENDING_FN prints events accepted but not yet processed.
declare -A R
bench_peer() {
  local key=$1 label=$2 url=$3 count_fn=$4 pending_fn=$5 prefix=$6; shift 6
  local roots=("$@") c0 c1 c2 m0 m1 t0 t1 t2 base n last pend stable=0 tlast
  read -r -a prefix_arr <<<"$prefix"
  NEXT=0  # a fresh server: the bodies' event_ids are new to it
  base=$($count_fn)
  echo "-- [$(date +%T)] $label: wrk -t1 -c$CONNS -d${DURATION}s${prefix:+ (wrk under: $prefix)}"
  c0=$(tree_ticks "${roots[@]}"); m0=$(machine_ticks); t0=$(now)
  wrk_run "$CONNS" "$DURATION" "$url" "${prefix_arr[@]}"
  t1=$(now); c1=$(tree_ticks "${roots[@]}"); m1=$(machine_ticks)
  t0=$(calc "$t1 - $W_seconds" 3)  # wrk's own clock starts after it has loaded the bodies
  R[$key.rss]=$(tree_mb VmRSS "${roots[@]}"); R[$key.procs]=$(tree_pids "${roots[@]}" | wc -l)
  n=$(( $($count_fn) - base )); R[$key.stored_in_load]=$n
  R[$key.accepted]=$((W_requests - W_non2xx)); R[$key.non2xx]=$W_non2xx; R[$key.sockerr]=$W_sockerr
  R[$key.secs]=$W_seconds; R[$key.p50]=$W_p50_ms; R[$key.p99]=$W_p99_ms; R[$key.wrk_cpu]=$WRK_CPU
  R[$key.cpu_load]=$(calc "($c1 - $c0) / $TCK" 2)
  # everything else that ran meanwhile: wrk (loading its bodies included) and any other work
  R[$key.cpu_other]=$(calc "($m1 - $m0 - ($c1 - $c0)) / $TCK" 2)
  echo "   $W_requests requests in ${W_seconds}s, non-2xx $W_non2xx, socket errors $W_sockerr, p50 $W_p50_ms ms, p99 $W_p99_ms ms; stored so far: $n"
  # wait until the stored count stops growing and nothing is pending
  last=$n; tlast=$t1
  while :; do
    sleep 1
    n=$(( $($count_fn) - base )); pend=$($pending_fn)
    if [ "$n" -ne "$last" ]; then last=$n; tlast=$(now); stable=0; else stable=$((stable + 1)); fi
    if [ "$pend" -eq 0 ] && [ "$stable" -ge 3 ]; then break; fi
    if [ "$(calc "$(now) - $t1 > $DRAIN_MAX" 0)" = 1 ]; then echo "   still $pend pending after ${DRAIN_MAX}s: giving up"; break; fi
  done
  t2=$(now); c2=$(tree_ticks "${roots[@]}")
  R[$key.stored]=$last
  R[$key.drain]=$(calc "$tlast - $t1" 1)
  R[$key.until]=$(calc "$tlast - $t0" 3)
  R[$key.cpu_all]=$(calc "($c2 - $c0) / $TCK" 2)
  R[$key.hwm]=$(tree_mb VmHWM "${roots[@]}")
  echo "   stored $last events, the last $(calc "$tlast - $t1" 1) s after the load ended; server CPU ${R[$key.cpu_load]} s during load, ${R[$key.cpu_all]} s until stored"
  echo "-- [$(date +%T)] $label: wrk -t1 -c1 -d${LOW_DURATION}s (latency at low load)"
  wrk_run 1 "$LOW_DURATION" "$url" "${prefix_arr[@]}"
  R[$key.p50_c1]=$W_p50_ms; R[$key.p99_c1]=$W_p99_ms; R[$key.rps_c1]=$(calc "($W_requests - $W_non2xx) / $W_seconds" 0)
  echo "   $W_requests requests, non-2xx $W_non2xx, p50 $W_p50_ms ms, p99 $W_p99_ms ms"
}
zero() { echo 0; }

# ---------------------------------------------------------------- Sightline
SL_TOKEN=bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
sl_count() {
  curl -sf -H "Authorization: Bearer $SL_TOKEN" "http://127.0.0.1:$SL_PORT/api/v1/issues?project=bench" |
    python3 -c 'import json, sys; print(sum(i.get("count", 0) for i in json.load(sys.stdin).get("issues", [])))' 2>/dev/null || echo 0
}
run_sightline() {  # KEY LABEL SERVER_PREFIX WRK_PREFIX
  local key=$1 label=$2 sprefix=$3 wprefix=$4 dir="$WORK/$1"
  cat > "$WORK/sightline.toml" <<EOF
api_token = "$SL_TOKEN"
fsync = "always"

[storage]
retention_days = 0

[[projects]]
name = "bench"
id = $PROJECT
keys = ["$KEY"]
EOF
  echo
  echo "== $label ($("$BIN" --version 2>/dev/null || echo "$BIN"))"
  # shellcheck disable=SC2086
  $sprefix "$BIN" serve --config "$WORK/sightline.toml" --listen "127.0.0.1:$SL_PORT" --data-dir "$dir" --log-level warn > "$dir.out" 2>&1 &
  SL_PID=$!; PIDS+=("$SL_PID")
  wait_http "http://127.0.0.1:$SL_PORT/health"
  probe "http://127.0.0.1:$SL_PORT/api/$PROJECT/envelope/" || { tail -5 "$dir.out"; exit 1; }
  for _ in $(seq 1 100); do [ "$(sl_count)" -ge 1 ] && break; sleep 0.1; done
  bench_peer "$key" "$label" "http://127.0.0.1:$SL_PORT/api/$PROJECT/envelope/" sl_count zero "$wprefix" "$SL_PID"
  R[$key.disk]=$(du -sm "$dir" | cut -f1)
  kill -TERM "$SL_PID"; wait "$SL_PID" || true
}
if runs sightline-pinned || runs sightline; then
  [ -x "$BIN" ] || { echo "no binary at $BIN"; exit 1; }
fi
runs sightline-pinned && run_sightline slp "Sightline, server on core 0 (taskset -c 0), wrk on core 1" "taskset -c 0" "taskset -c 1"
runs sightline && run_sightline sl "Sightline, unpinned" "" ""

# ---------------------------------------------------------------- Bugsink
if runs bugsink; then
  echo
  echo "== Bugsink $BS_VERSION (gunicorn $BS_WORKERS workers + bugsink-runsnappea, SQLite)"
  if [ ! -x "$BS_VENV/bin/bugsink-manage" ] || ! "$BS_VENV/bin/pip" show bugsink 2>/dev/null | grep -qx "Version: $BS_VERSION"; then
    rm -rf "$BS_VENV"; mkdir -p "$(dirname "$BS_VENV")"
    python3 -m venv "$BS_VENV"
    "$BS_VENV/bin/pip" install -q "bugsink==$BS_VERSION"
  fi
  BS="$WORK/bugsink"; mkdir -p "$BS"
  (cd "$BS" && "$BS_VENV/bin/bugsink-create-conf" --template=singleserver --host=127.0.0.1 --port="$BS_PORT" --base-dir="$BS" >/dev/null)
  cat >> "$BS/bugsink_conf.py" <<EOF

# ---- bench/events.sh: plain http on loopback, no phone-home, quotas out of the way
BUGSINK["BASE_URL"] = "http://127.0.0.1:$BS_PORT"
BUGSINK["PHONEHOME"] = False
for _k in ("MAX_EVENTS_PER_PROJECT_PER_5_MINUTES", "MAX_EVENTS_PER_PROJECT_PER_HOUR",
           "MAX_EVENTS_PER_PROJECT_PER_MONTH", "MAX_EVENTS_PER_5_MINUTES", "MAX_EVENTS_PER_HOUR",
           "MAX_EVENTS_PER_MONTH"):
    BUGSINK[_k] = 1_000_000_000
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
SECURE_PROXY_SSL_HEADER = None
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = False
USE_X_REAL_IP = False
EOF
  bsm() { (cd "$BS" && PYTHONPATH="$BS" "$BS_VENV/bin/bugsink-manage" "$@"); }
  bsm migrate -v0
  bsm migrate snappea --database=snappea -v0
  bsm shell -c "
import uuid
from django.contrib.auth import get_user_model
from teams.models import Team, TeamMembership, TeamRole
from projects.models import Project, ProjectMembership, ProjectRole
user = get_user_model().objects.create_superuser('admin', 'admin@example.org', 'bench-admin-password')
team = Team.objects.create(name='bench')
TeamMembership.objects.create(team=team, user=user, role=TeamRole.ADMIN, accepted=True)
# fixed id and key, so the same DSN (and so the same bodies) reach both peers; no eviction during the run
project = Project.objects.create(id=$PROJECT, name='bench', slug='bench', team=team,
                                 sentry_key=uuid.UUID('$KEY'), retention_max_event_count=1_000_000_000)
ProjectMembership.objects.create(project=project, user=user, role=ProjectRole.ADMIN, accepted=True)
print('bugsink DSN:', project.dsn)
"
  (cd "$BS" && PYTHONPATH="$BS" exec "$BS_VENV/bin/gunicorn" --bind="127.0.0.1:$BS_PORT" --workers="$BS_WORKERS" \
     --error-logfile - bugsink.wsgi > "$BS/gunicorn.out" 2>&1) &
  BS_WEB=$!; PIDS+=("$BS_WEB")
  (cd "$BS" && PYTHONPATH="$BS" exec "$BS_VENV/bin/bugsink-runsnappea" > "$BS/snappea.out" 2>&1) &
  BS_SNAP=$!; PIDS+=("$BS_SNAP")
  wait_http "http://127.0.0.1:$BS_PORT/health/ready"
  bs_sql() { sqlite3 -cmd '.timeout 10000' "$@" 2>/dev/null || echo 0; }
  bs_count() { bs_sql "$BS/db.sqlite3" "select count(*) from events_event"; }
  bs_pending() { bs_sql "$BS/snappea.sqlite3" "select count(*) from snappea_task"; }
  probe "http://127.0.0.1:$BS_PORT/api/$PROJECT/envelope/" || { tail -20 "$BS/gunicorn.out"; exit 1; }
  for _ in $(seq 1 100); do [ "$(bs_count)" -ge 1 ] && break; sleep 0.1; done
  bench_peer bs "Bugsink" "http://127.0.0.1:$BS_PORT/api/$PROJECT/envelope/" bs_count bs_pending "" "$BS_WEB" "$BS_SNAP"
  R[bs.disk]=$(du -sm "$BS" | cut -f1)
  grep -m3 -E "Traceback|ERROR" "$BS/gunicorn.out" "$BS/snappea.out" || true
fi

# ---------------------------------------------------------------- table
cols=()
runs sightline-pinned && cols+=(slp)
runs sightline && cols+=(sl)
runs bugsink && cols+=(bs)
declare -A NAME=([slp]="Sightline 1 core" [sl]="Sightline" [bs]="Bugsink")
# derived metrics
for k in "${cols[@]}"; do
  R[$k.acc_rate]=$(calc "${R[$k.accepted]} / ${R[$k.secs]}" 0)
  R[$k.stored_rate_load]=$(calc "${R[$k.stored_in_load]} / ${R[$k.secs]}" 0)
  R[$k.stored_rate]=$(calc "${R[$k.stored]} / ${R[$k.until]}" 0)
  R[$k.cores]=$(calc "${R[$k.cpu_load]} / ${R[$k.secs]}" 2)
  R[$k.acc_per_cpu]=$(calc "${R[$k.cpu_load]} > 0 ? ${R[$k.accepted]} / ${R[$k.cpu_load]} : 0" 0)
  R[$k.stored_per_cpu]=$(calc "${R[$k.cpu_all]} > 0 ? ${R[$k.stored]} / ${R[$k.cpu_all]} : 0" 0)
  R[$k.stored_pct]=$(calc "${R[$k.accepted]} > 0 ? 100 * ${R[$k.stored]} / ${R[$k.accepted]} : 0" 1)
  R[$k.kb_per_event]=$(calc "${R[$k.stored]} > 0 ? 1024 * ${R[$k.disk]} / ${R[$k.stored]} : 0" 1)
done
ROWS=(
  "acc_rate|accepted events/s (-c$CONNS, 2xx)|hi"
  "non2xx|non-2xx responses|"
  "sockerr|socket errors|"
  "p50|p50 latency ms (-c$CONNS)|lo"
  "p99|p99 latency ms (-c$CONNS)|lo"
  "p50_c1|p50 latency ms (-c1)|lo"
  "p99_c1|p99 latency ms (-c1)|lo"
  "rps_c1|events/s at -c1|hi"
  "stored|events stored (of accepted)|"
  "stored_pct|stored / accepted %|"
  "stored_rate_load|stored/s during load|hi"
  "stored_rate|stored/s, load start to last stored|hi"
  "drain|s to store backlog after load|"
  "cpu_load|server CPU s during load|"
  "cores|server cores busy during load|"
  "cpu_all|server CPU s until all stored|"
  "acc_per_cpu|accepted events per CPU-s|hi"
  "stored_per_cpu|stored events per CPU-s (all work)|hi"
  "rss|server RSS MB after load (sum)|lo"
  "hwm|server peak RSS MB (sum of peaks)|lo"
  "procs|server processes|"
  "disk|data on disk MB|lo"
  "kb_per_event|KB on disk per stored event|lo"
  "wrk_cpu|wrk CPU s (-c$CONNS run, with loading)|"
  "cpu_other|CPU s of all else (wrk incl.) in load|"
)
echo
echo "== results: $BODIES distinct envelopes (5 real sentry-sdk error envelopes, fresh event_ids), wrk -t1 -c$CONNS -d${DURATION}s; ratio = Sightline (unpinned) / Bugsink"
line=$(printf '%-38s' metric); for k in "${cols[@]}"; do line+=$(printf ' | %16s' "${NAME[$k]}"); done
[ -n "${R[sl.acc_rate]:-}" ] && [ -n "${R[bs.acc_rate]:-}" ] && line+=$(printf ' | %8s' ratio)
echo "$line"
for row in "${ROWS[@]}"; do
  IFS='|' read -r m label better <<<"$row"
  line=$(printf '%-38s' "$label"); for k in "${cols[@]}"; do line+=$(printf ' | %16s' "${R[$k.$m]:--}"); done
  if [ -n "${R[sl.$m]:-}" ] && [ -n "${R[bs.$m]:-}" ] && [ -n "$better" ]; then
    line+=$(printf ' | %8s' "$(calc "${R[bs.$m]} > 0 ? ${R[sl.$m]} / ${R[bs.$m]} : 0" 2)x")
  fi
  echo "$line"
done
