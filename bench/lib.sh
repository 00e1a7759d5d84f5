# Shared by the benchmark scripts (sourced): tool installation, the release
# build, and small /proc and HTTP helpers.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/sightline-target}

# need COMMAND DEBIAN_PACKAGE: installs the package when the command is missing.
need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "$2" >/dev/null
  fi
}
need /usr/sbin/clickhouse-server clickhouse-server
need clickhouse-client clickhouse-client

# SKIP_BUILD=1: use the binary already built (e.g. while someone else builds).
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release --bin sightline --examples
BIN=$CARGO_TARGET_DIR/release/sightline
EX=$CARGO_TARGET_DIR/release/examples

rss_mb() { awk '/VmRSS/{printf "%.0f", $2/1024}' "/proc/$1/status"; }
hwm_mb() { awk '/VmHWM/{printf "%.0f", $2/1024}' "/proc/$1/status"; }
wait_http() { for _ in $(seq 1 600); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "no answer from $1"; exit 1; }

# ---- added for bench/metrics.sh (the helpers above are unchanged)
# free_port: a TCP port nothing listens on at 127.0.0.1 right now.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# rss_kb / hwm_kb PID: VmRSS / VmHWM in kB.
rss_kb() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/VmHWM/{print $2}' "/proc/$1/status"; }
# cpu_ticks PID: utime+stime (+ reaped children) of one process, in clock ticks
# (getconf CLK_TCK per second).
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12+$13+$14+$15}'; }
# machine_ticks: busy clock ticks of the whole machine (every process), from /proc/stat.
machine_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9; exit}' /proc/stat; }
