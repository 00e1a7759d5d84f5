"""PromQL side by side with a real Prometheus (Debian's 2.42).

Prometheus scrapes the example app (prometheus_client, under traffic, killed
and restarted half-way: a counter reset, a failed scrape, staleness markers)
and itself, every second, and remote-writes every sample into Sightline. Both
stores then hold identical samples, and several hundred instant and range
queries must give the same answer from both HTTP APIs, within 1e-6 relative.

Intentional differences: none are expected. Sightline's errors are worded
its own way, so only successful answers are compared (and error answers must
be errors on both sides).
"""

import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from conftest import TOKEN, Sightline, _free_port

APP_DIR = Path(__file__).resolve().parents[2] / "examples" / "fastapi-app"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
COLLECT_SECS = float(os.environ.get("PROMQL_COMPAT_SECS", "70"))
REL_TOL = 1e-6


class ExampleApp:
    def __init__(self, port: int, log_dir: Path):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_dir = log_dir
        self.proc = None

    def start(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("SENTRY_")}
        env["LOG_LEVEL"] = "WARNING"
        with open(self.log_dir / "app.stderr", "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "app:app", "--port", str(self.port), "--log-level", "warning"],
                cwd=APP_DIR, env=env, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            assert self.proc.poll() is None, "the example app exited"
            try:
                if requests.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "the example app never became healthy"
            time.sleep(0.1)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def traffic(app: ExampleApp, stop: threading.Event):
    """A mix of routes and statuses: scored, rejected and failed submissions,
    stats reads, unknown paths."""
    s = requests.Session()
    i = 0
    while not stop.is_set():
        i += 1
        try:
            if i % 5 == 0:
                s.post(f"{app.url}/assessments/a{i % 3}/submit", json={"answers": {"q1": 1, "q2": 1}}, timeout=2)
            elif i % 7 == 0:
                s.post(f"{app.url}/assessments/a1/submit", json={"answers": {"q9": 1}}, timeout=2)
            elif i % 11 == 0:
                s.post(f"{app.url}/assessments/a2/submit", json={"answers": {"q4": 3}}, timeout=2)
            elif i % 13 == 0:
                s.get(f"{app.url}/nope", timeout=2)
            else:
                s.get(f"{app.url}/assessments/a{i % 4}/stats", timeout=2)
        except requests.RequestException:
            time.sleep(0.05)  # the app is being restarted
        time.sleep(0.02)


def prom_get(base, path, headers=None, **params):
    r = requests.get(base + path, params=params, headers=headers or {}, timeout=60)
    return r.status_code, r.json()


def close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= REL_TOL * max(abs(a), abs(b)) or abs(a - b) < 1e-12


def key(metric: dict) -> tuple:
    return tuple(sorted(metric.items()))


def compare(q: str, ours: dict, theirs: dict) -> list[str]:
    """Differences between two successful `data` objects."""
    if ours["resultType"] != theirs["resultType"]:
        return [f"{q}: resultType {ours['resultType']} vs {theirs['resultType']}"]
    kind = ours["resultType"]
    if kind in ("scalar", "string"):
        a, b = ours["result"], theirs["result"]
        if a[0] != b[0] or (kind == "scalar" and not close(float(a[1]), float(b[1]))) or (kind == "string" and a[1] != b[1]):
            return [f"{q}: {a} vs {b}"]
        return []
    diffs = []
    mine = {key(s["metric"]): s for s in ours["result"]}
    prom = {key(s["metric"]): s for s in theirs["result"]}
    for k in sorted(set(mine) | set(prom)):
        if k not in mine:
            diffs.append(f"{q}: missing series {dict(k)}")
            continue
        if k not in prom:
            diffs.append(f"{q}: extra series {dict(k)} = {mine[k].get('value') or mine[k].get('values', [])[:3]}")
            continue
        if kind == "vector":
            a, b = mine[k]["value"], prom[k]["value"]
            if a[0] != b[0] or not close(float(a[1]), float(b[1])):
                diffs.append(f"{q}: {dict(k)}: {a} vs {b}")
        else:
            a, b = mine[k]["values"], prom[k]["values"]
            if [p[0] for p in a] != [p[0] for p in b]:
                diffs.append(f"{q}: {dict(k)}: timestamps differ: {len(a)} vs {len(b)} points "
                             f"(first {a[:2]} vs {b[:2]})")
                continue
            for pa, pb in zip(a, b):
                if not close(float(pa[1]), float(pb[1])):
                    diffs.append(f"{q}: {dict(k)} at {pa[0]}: {pa[1]} vs {pb[1]}")
                    break
    if kind == "vector" and not diffs:
        # Order matters for sort()/sort_desc()/topk: compare it where it is defined.
        if q.startswith(("sort(", "sort_desc(")):
            if [key(s["metric"]) for s in ours["result"]] != [key(s["metric"]) for s in theirs["result"]]:
                diffs.append(f"{q}: order differs")
    return diffs


C = "http_requests_total"
H = "http_request_duration_seconds"
G = "http_requests_in_flight"
PC = "prometheus_http_requests_total"
SUM = "go_gc_duration_seconds"

QUERIES = [
    # selectors and matchers
    "up", "up == 1", "up{job='app'}", C, f'{C}{{path!="/nope"}}', f'{C}{{status=~"2.."}}',
    f'{C}{{status!~"2..|4.."}}', f'{C}{{path=~"/assessments/.*",method="POST"}}', f'{{__name__=~"http_.*_total"}}',
    f'{C} offset 20s', f'{C}[30s]', f'{C} @ end()', f'{C} @ start()', f'{G}', f'{H}_bucket{{le="+Inf"}}',
    "scrape_duration_seconds", "scrape_samples_scraped", "go_goroutines", "process_resident_memory_bytes",
    f"{SUM}", f'{SUM}{{quantile="0.5"}}', "prometheus_tsdb_head_series", "nonexistent_metric",
    # counters
    f"rate({C}[30s])", f"rate({C}[1m])", f"irate({C}[30s])", f"increase({C}[1m])", f"increase({C}[20s])",
    f"resets({C}[1m])", f"changes({C}[1m])", f"delta({G}[1m])", f"idelta({G}[30s])", f"deriv({G}[1m])",
    f"predict_linear({G}[1m], 60)", f"rate({PC}[30s])", f"irate({PC}[1m])", f"increase({PC}[45s])",
    f"rate({H}_sum[30s]) / rate({H}_count[30s])", f"rate({C}[1m] offset 10s)", f"rate({C}[30s] @ end())",
    f"resets(process_cpu_seconds_total[1m])", f"rate(process_cpu_seconds_total[30s])",
    # over_time
    f"avg_over_time({G}[1m])", f"sum_over_time({C}[30s])", f"min_over_time(go_goroutines[1m])",
    f"max_over_time(go_goroutines[1m])", f"count_over_time(up[1m])", f"last_over_time({C}[30s])",
    f"present_over_time({C}[30s])", f"stddev_over_time(go_goroutines[1m])", f"stdvar_over_time(go_goroutines[1m])",
    f"quantile_over_time(0.9, go_goroutines[1m])", f"quantile_over_time(0.5, scrape_duration_seconds[1m])",
    "absent_over_time(nonexistent_metric[1m])", f"absent_over_time({C}[1m])", "changes(up[2m])",
    "holt_winters(go_goroutines[1m], 0.5, 0.5)",
    # histograms
    f"histogram_quantile(0.5, rate({H}_bucket[30s]))", f"histogram_quantile(0.99, sum by (le) (rate({H}_bucket[1m])))",
    f"histogram_quantile(0.9, sum by (le, path) (rate({H}_bucket[1m])))", f"histogram_quantile(0, rate({H}_bucket[1m]))",
    f"histogram_quantile(1, rate({H}_bucket[1m]))", f"histogram_quantile(1.5, rate({H}_bucket[1m]))",
    f"histogram_quantile(0.75, {H}_bucket)", "histogram_quantile(0.9, rate(prometheus_http_request_duration_seconds_bucket[1m]))",
    f"histogram_quantile(0.5, sum without (instance) (rate({H}_bucket[30s])))",
    # aggregations
    f"sum({C})", f"sum by (path) ({C})", f"sum without (status) ({C})", f"avg by (method) ({C})",
    f"min({C})", f"max by (status) ({C})", f"count({C})", f"count by (path) ({C})", f"stddev({C})",
    f"stdvar by (method) ({C})", f"topk(3, {C})", f"bottomk(2, {C})", f"topk by (method) (1, {C})",
    f"quantile(0.5, {C})", f"quantile by (method) (0.9, {C})", f'count_values("value", up)',
    f'count_values by (job) ("v", scrape_samples_scraped)', f"group({C})", f"group by (status) ({C})",
    f"sum by (path) (rate({C}[1m]))", f"sum(rate({C}[30s])) by (status)", f"avg(rate({PC}[1m]))",
    f"max(go_goroutines) by (job)", f"sum by (handler) (rate({PC}[1m]))", f"count(count by (path) ({C}))",
    f"sum by (le) ({H}_bucket)", f"topk(5, sum by (handler) (rate({PC}[1m])))",
    f"quantile(0.25, rate({C}[1m]))", f"stddev by (job) (rate({PC}[30s]))",
    # binary operators
    f"{C} * 2", f"2 * {C}", f"{C} / 0", f"-{C}", f"{C} % 7", f"{C} ^ 2", f"{C} + {C}",
    f"{C} - ignoring(status) group_left sum without (status) ({C})", f"{C} > 5", f"{C} > bool 5", f"{C} < 3",
    f"{C} == bool 0", f"{C} >= 1 <= 1000", f"up + on(job, instance) scrape_duration_seconds",
    f"scrape_duration_seconds / on(instance, job) group_left up", f"{C} / on(method, path) group_left sum by (method, path) ({C})",
    f"sum by (path) ({C}) / ignoring(status) group_right sum by (path, status) ({C})" if False else f"sum by (path, status) ({C}) / on(path) group_left sum by (path) ({C})",
    f"{C} and {C}{{status='200'}}", f"{C} or up", f"{C} unless {C}{{method='GET'}}", f"up or vector(1)",
    f"vector(1) + vector(2)", "1 + 2 * 3", "2 ^ 3 ^ 2", "(1 + 2) * 3", "10 % 3", "1 / 0", "-1 / 0", "0 / 0",
    "1 > bool 2", "scalar(up{job='app'})", "scalar(up)", f"{C} > on() group_left scalar(sum(up))",
    f"rate({C}[1m]) > 0", f"rate({C}[30s]) * 60", "go_goroutines > bool 10", "up == on(job) group_left up",
    f"atan2({G}, 2)" if False else f"{G} atan2 2",
    f"sum(rate({C}[1m])) / sum(rate({C}[1m] offset 10s))", f"{C} * on(path, method, status) {C}",
    f"sum without (status) ({C}) < ignoring(status) group_right {C}",
    # functions
    f"abs(-{C})", f"ceil(rate({C}[1m]))", f"floor(rate({C}[1m]))", f"round(rate({C}[1m]))",
    f"round(rate({C}[1m]), 0.1)", f"exp({G})", f"ln({C})", f"log2({C})", f"log10({C})", f"sqrt({C})",
    f"sgn({C} - 5)", f"clamp({C}, 2, 10)", f"clamp_min({C}, 5)", f"clamp_max({C}, 5)", f"clamp({C}, 10, 2)",
    f"sin({G})", f"cos(go_goroutines)", f"tan({G})", f"asin({G})", f"acos({G})", f"atan(go_goroutines)",
    f"sinh({G})", f"cosh({G})", f"tanh({G})", f"asinh(go_goroutines)", f"acosh(go_goroutines)", f"atanh({G})",
    f"deg(go_goroutines)", f"rad(go_goroutines)", "pi()", "time()", f"timestamp({C})", f"timestamp(up)",
    "minute()", "hour()", "day_of_month()", "day_of_week()", "day_of_year()", "days_in_month()", "month()", "year()",
    "minute(vector(1700000000))", "hour(timestamp(up))", "month(vector(1e9))", "day_of_week(vector(0))",
    "absent(nonexistent_metric)", 'absent(nonexistent_metric{job="x"})', f"absent({C})", 'absent(nonexistent_metric{job=~"x"})',
    "vector(3)", "scalar(vector(3))", f"sort({C})", f"sort_desc({C})", f"sort(rate({C}[1m]))",
    f'label_replace({C}, "route", "$1", "path", "/assessments/(.*)")', f'label_replace(up, "foo", "bar", "", "")',
    f'label_replace(up, "instance", "", "instance", ".*")', f'label_join({C}, "joined", "-", "method", "path", "status")',
    f'label_join(up, "job", ",", "instance")', f"sort_desc(sum by (path) (rate({C}[1m])))",
    # subqueries
    f"max_over_time(rate({C}[30s])[1m:10s])", f"avg_over_time(go_goroutines[1m:5s])",
    f"rate({C}[1m:5s])", f"min_over_time(sum(rate({C}[30s]))[1m:15s])", f"max_over_time(up[1m:])",
    f"sum_over_time(rate({C}[20s])[40s:7s] offset 5s)", f"count_over_time({C}[1m:3s])",
    f"quantile_over_time(0.5, sum(rate({C}[30s]))[1m:5s])", f"last_over_time(deriv({G}[30s])[1m:10s])",
    # strings and literals
    '"hello"', "42", "-Inf", "NaN", "+Inf",
]

ERRORS = [
    "rate(up)", "sum(", 'up{job=~"("}', "foo bar", "histogram_quantile(0.5)", f"{C} + on(path) {C}",
    "label_replace(up, \"1bad\", \"\", \"job\", \"\")", "topk(x, up)",
]


@pytest.fixture
def prometheus_stack(tmp_path):
    assert Path(PROMETHEUS).exists(), (
        "Prometheus is needed for this test: apt-get install prometheus (./scripts/test installs it)")
    sl = Sightline(tmp_path / "sl-data").start()
    app = ExampleApp(_free_port(), tmp_path).start()
    prom_port = _free_port()
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(f"""
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: app
    static_configs: [{{targets: ['127.0.0.1:{app.port}']}}]
  - job_name: prometheus
    static_configs: [{{targets: ['127.0.0.1:{prom_port}']}}]
remote_write:
  - url: {sl.url}/api/v1/write
    authorization: {{credentials: {TOKEN}}}
    queue_config: {{batch_send_deadline: 500ms, max_samples_per_send: 5000, min_backoff: 50ms, max_backoff: 1s}}
""")
    with open(tmp_path / "prometheus.log", "wb") as log:
        prom = subprocess.Popen(
            [PROMETHEUS, f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'prom-data'}",
             f"--web.listen-address=127.0.0.1:{prom_port}", "--storage.tsdb.retention.time=1d"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    prom_url = f"http://127.0.0.1:{prom_port}"
    deadline = time.monotonic() + 60
    while True:
        assert prom.poll() is None, (tmp_path / "prometheus.log").read_text()[-3000:]
        try:
            if requests.get(prom_url + "/-/ready", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, "Prometheus never became ready"
        time.sleep(0.2)
    yield sl, app, prom_url, tmp_path
    os.killpg(prom.pid, signal.SIGKILL)
    prom.wait()
    app.stop()
    if sl.proc.poll() is None:
        sl.proc.kill()
        sl.proc.wait()


def test_promql_answers_match_prometheus(prometheus_stack):
    sl, app, prom_url, tmp_path = prometheus_stack
    auth = {"Authorization": f"Bearer {TOKEN}"}
    t0 = time.time()
    stop = threading.Event()
    load = threading.Thread(target=traffic, args=(app, stop), daemon=True)
    load.start()
    # Half-way: the app dies (failed scrapes, stale series) and comes back
    # with its counters at zero (a counter reset).
    time.sleep(COLLECT_SECS / 2)
    app.stop()
    time.sleep(4)
    app.start()
    time.sleep(COLLECT_SECS / 2)
    stop.set()
    load.join()
    end = time.time() - 5
    start = t0 + 5

    # Wait until remote write has delivered everything up to `end`.
    probes = ["count({__name__=~\".+\"})", "sum(count_over_time(up[2m]))",
              f"sum(count_over_time({C}[2m]))", "sum(count_over_time(go_goroutines[2m]))"]
    deadline = time.monotonic() + 60
    while True:
        a = [prom_get(sl.url, "/api/v1/query", auth, query=p, time=end)[1] for p in probes]
        b = [prom_get(prom_url, "/api/v1/query", query=p, time=end)[1] for p in probes]
        if all(x.get("status") == "success" for x in a) and a == b:
            break
        assert time.monotonic() < deadline, f"remote write never caught up: {a} vs {b}"
        time.sleep(1)

    diffs = []
    compared = 0
    times = [end, start + (end - start) * 0.5, start + (end - start) * 0.25]
    for q in QUERIES:
        for t in times:
            sa, a = prom_get(sl.url, "/api/v1/query", auth, query=q, time=f"{t:.3f}")
            sb, b = prom_get(prom_url, "/api/v1/query", query=q, time=f"{t:.3f}")
            if b.get("status") != "success":
                # Refused by both, for the same kind of reason: agreement.
                if a.get("status") != "error" or a.get("errorType") != b.get("errorType"):
                    diffs.append(f"{q} @ {t:.3f}: Prometheus refused it ({b}), Sightline: {sa} {a}")
                compared += 1
                continue
            if sa != 200:
                diffs.append(f"{q} @ {t:.3f}: Sightline answered {sa}: {a}")
                continue
            diffs += compare(f"{q} @ {t:.3f}", a["data"], b["data"])
            compared += 1
        params = dict(query=q, start=f"{start:.3f}", end=f"{end:.3f}", step="3")
        sa, a = prom_get(sl.url, "/api/v1/query_range", auth, **params)
        sb, b = prom_get(prom_url, "/api/v1/query_range", **params)
        if b.get("status") != "success":
            if a.get("status") != "error" or a.get("errorType") != b.get("errorType"):
                diffs.append(f"range {q}: Prometheus refused it ({b}), Sightline: {sa} {a}")
            compared += 1
            continue
        if sa != 200:
            diffs.append(f"range {q}: Sightline answered {sa}: {a}")
            continue
        diffs += compare(f"range {q}", a["data"], b["data"])
        compared += 1
    for q in ERRORS:
        sa, a = prom_get(sl.url, "/api/v1/query", auth, query=q, time=f"{end:.3f}")
        sb, b = prom_get(prom_url, "/api/v1/query", query=q, time=f"{end:.3f}")
        assert b["status"] == "error", f"{q}: {b}"
        if a.get("status") != "error" or sa != sb or a.get("errorType") != b.get("errorType"):
            diffs.append(f"error {q}: Sightline {sa} {a}, Prometheus {sb} {b}")
        compared += 1
    assert compared >= 200, compared
    assert not diffs, f"{len(diffs)} differences in {compared} comparisons:\n" + "\n".join(diffs[:80])

    # The other read APIs agree too.
    for path, params in [("/api/v1/labels", {}), ("/api/v1/label/job/values", {}),
                         ("/api/v1/series", {"match[]": "up"}), ("/api/v1/series", {"match[]": f'{C}{{status="200"}}'}),
                         ("/api/v1/label/path/values", {"match[]": C})]:
        params.update(start=f"{start:.3f}", end=f"{end:.3f}")
        sa, a = prom_get(sl.url, path, auth, **params)
        sb, b = prom_get(prom_url, path, **params)
        assert sa == 200, a
        if path == "/api/v1/series":
            assert sorted(map(key, a["data"])) == sorted(map(key, b["data"])), (path, params)
        else:
            assert sorted(a["data"]) == sorted(b["data"]), (path, params, a["data"], b["data"])
