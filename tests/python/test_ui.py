"""The web UI in a real browser: headless Chromium (Debian's chromium and
chromium-driver, driven by selenium) against the real binary, loaded with
data from the example FastAPI app (sentry-sdk errors and transactions,
OpenTelemetry spans, structlog lines shipped by `sightline run`, its
prometheus_client metrics scraped, its health probed).

It logs in, opens every page, follows request id → request view → issue →
logs, runs a log query and a PromQL query and sees their charts drawn,
resolves an issue, and checks that no page logs a console error. A
screenshot of every page is saved under $SIGHTLINE_ARTIFACTS (default
test-artifacts/ui/). Without a session every page redirects to the login and
every API answers 401; a state change without the CSRF token is refused.
"""

import os
import re
import time
from pathlib import Path

import pytest
import requests
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from conftest import Sightline, TOKEN
from test_sentry import CONFIG, App, api, request_view, wait_for

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("SIGHTLINE_ARTIFACTS", REPO / "test-artifacts" / "ui"))
FAILING = "req-ui-fail"
RETAKE = "req-ui-retake"
PAGES = ["/ui/", "/ui/issues", "/ui/logs", "/ui/traces", "/ui/flows", "/ui/metrics", "/ui/health", "/ui/settings"]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """A Sightline with the example app's logs, errors, spans, flows, metrics
    and health in it; the app keeps running (so probes stay green)."""
    tmp = tmp_path_factory.mktemp("ui")
    sl = Sightline(tmp / "data", config_text=CONFIG + "\n[traces]\nred_interval_secs = 1\n")
    sl.start()
    old = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = sl.url
    app = None
    try:
        app = App(sl, tmp)
        r = requests.post(sl.url + "/api/v1/targets", headers={"Authorization": f"Bearer {TOKEN}"},
                          json={"service": "assessments", "url": app.url, "interval": "1s"}, timeout=10)
        assert r.status_code == 201, r.text
        # Traffic once the app is scraped, so its request rate shows.
        wait_for(lambda: api(sl, "/api/v1/query", query='up{service="assessments"}')["data"]["result"],
                 lambda r: r and r[0]["value"][1] == "1", "the app scraped")
        for i in range(6):
            app.call("POST", "/assessments/a-1/submit", 200, request_id=f"req-ui-ok-{i}", user="u-1",
                     json={"answers": {"q1": 1}})
            app.call("GET", "/assessments/a-1/stats", 200, request_id=f"req-ui-stats-{i}")
        app.call("POST", "/assessments/a-2/submit", 500, request_id=FAILING, user="u-7",
                 json={"answers": {"q4": 3}})
        app.call("POST", "/assessments/a-2/retake?fail_at=clear_answers", 500, request_id=RETAKE, user="u-7")
        app.call("POST", "/assessments/a-3/retake", 200, request_id="req-ui-retake-ok", user="u-2")
        app.flush()
        requests.post(app.url + "/admin/otel/flush", timeout=30)

        def ready(v):
            return v is not None and v["errors"] and v["logs"] and len(v["spans"]) == 2
        wait_for(lambda: request_view(sl, FAILING), ready, "the failing request's logs, error and spans")
        wait_for(lambda: api(sl, "/api/v1/query", query="http_requests_total")["data"]["result"],
                 lambda r: len(r) > 0, "scraped request metrics")
        # More traffic on series that now exist, so their rate is above zero.
        for i in range(4):
            app.call("GET", "/assessments/a-1/stats", 200, request_id=f"req-ui-more-{i}")
        wait_for(lambda: api(sl, "/api/v1/query", query="sum(rate(http_requests_total[5m]))")["data"]["result"],
                 lambda r: r and float(r[0]["value"][1]) > 0,
                 "a request rate; samples: " + repr(api(sl, "/api/v1/query", query="http_requests_total[1m]")["data"]["result"][:2]))
        wait_for(lambda: api(sl, "/api/v1/health")["services"], lambda s: s and s[0]["state"] == "ok",
                 "the app probed healthy")
        yield sl, app
    finally:
        if app:
            app.stop()
        if old is None:
            os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        else:
            os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = old
        sl.stop()


@pytest.fixture(scope="module")
def browser():
    opts = Options()
    opts.binary_location = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
    for a in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1440,1000", "--force-color-profile=srgb", "--lang=en-US"]:
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver"))
    d = webdriver.Chrome(service=service, options=opts)
    d.set_page_load_timeout(60)
    yield d
    d.quit()


def console_errors(driver):
    """Console messages at error level since the last call."""
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def shot(driver, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # The whole page, not just the window.
    h = driver.execute_script("return Math.max(document.body.scrollHeight, 800)")
    driver.set_window_size(1440, min(h + 40, 6000))
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))
    driver.set_window_size(1440, 1000)


def visit(driver, url, name=None):
    driver.get(url)
    WebDriverWait(driver, 20).until(lambda d: d.execute_script("return document.readyState") == "complete")
    if name:
        shot(driver, name)
    errs = console_errors(driver)
    assert not errs, f"console errors on {url}: {errs}"


def login(driver, base):
    driver.get(base + "/ui/issues")
    assert "/ui/login" in driver.current_url, driver.current_url
    assert console_errors(driver) == []
    # A wrong token is refused with a reason.
    driver.find_element(By.NAME, "token").send_keys("not-the-token")
    driver.find_element(By.CSS_SELECTOR, "form.login button").click()
    WebDriverWait(driver, 10).until(lambda d: "That is not the API token" in d.page_source)
    driver.get_log("browser")  # the 401 of the refused login is expected
    driver.find_element(By.NAME, "token").send_keys(TOKEN)
    driver.find_element(By.CSS_SELECTOR, "form.login button").click()
    WebDriverWait(driver, 10).until(EC.url_contains("/ui/issues"))
    cookie = driver.get_cookie("sightline_session")
    assert cookie and cookie["httpOnly"] is True and cookie["sameSite"] == "Strict", cookie


def press(driver, sl, issue_id, button, then, status):
    """Presses an issue's status button; the page then offers `then` and the API says `status`."""
    driver.find_element(By.XPATH, f"//div[@id='status']//button[text()='{button}']").click()
    WebDriverWait(driver, 10).until(
        lambda d: d.find_elements(By.XPATH, f"//div[@id='status']//button[text()='{then}']"))
    assert api(sl, f"/api/v1/issues/{issue_id}")["status"] == status


def wait_chart(driver, css):
    """uPlot drew: the chart holds a canvas with a non-zero size."""
    shot(driver, "last-wait")  # what the page showed, should the wait fail
    WebDriverWait(driver, 10).until(
        lambda d: d.execute_script(
            "const c = document.querySelector(arguments[0] + ' canvas'); return c && c.width > 0 && c.height > 0", css))


def test_without_login_every_page_redirects_and_api_answers_401(loaded):
    sl, _ = loaded
    for p in PAGES + ["/ui/requests/" + FAILING, "/ui/issues/1", "/ui/traces/" + "0" * 32, "/ui/flows/x", "/ui/logs/tail"]:
        r = requests.get(sl.url + p, allow_redirects=False, timeout=10)
        assert r.status_code == 303 and r.headers["location"].startswith("/ui/login?next="), (p, r.status_code)
    for p in ["/api/v1/logs", "/api/v1/issues", "/api/v1/query?query=up", "/api/v1/projects", "/api/v1/health"]:
        assert requests.get(sl.url + p, timeout=10).status_code == 401, p
    # A forged or stale cookie is no session.
    r = requests.get(sl.url + "/ui/", cookies={"sightline_session": "v1.99999999999.00.00"}, allow_redirects=False)
    assert r.status_code == 303
    # State changes without a session: 401.
    r = requests.post(sl.url + "/ui/issues/1/status", data={"status": "resolved"}, allow_redirects=False)
    assert r.status_code == 401
    # The login page and assets are open; the page has no data on it.
    r = requests.get(sl.url + "/ui/login", timeout=10)
    assert r.status_code == 200 and "API token" in r.text and FAILING not in r.text
    assert requests.get(sl.url + "/ui/assets/app.js").status_code == 200
    # A page refreshing itself (htmx) after the session ended: the window goes to the login.
    r = requests.get(sl.url + "/ui/", headers={"HX-Request": "true"}, allow_redirects=False)
    assert r.status_code == 401 and r.headers["hx-redirect"].startswith("/ui/login?next="), r.headers
    # Browsers asking for / go to the UI.
    r = requests.get(sl.url + "/", headers={"Accept": "text/html"}, allow_redirects=False)
    assert r.status_code in (303, 307) and r.headers["location"] == "/ui/"


def test_state_changes_need_the_csrf_token(loaded):
    sl, _ = loaded
    s = requests.Session()
    r = s.post(sl.url + "/ui/login", data={"token": TOKEN, "next": "/ui/issues"}, allow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/issues"
    issue = api(sl, "/api/v1/issues")["issues"][0]
    url = f"{sl.url}/ui/issues/{issue['id']}/status"
    for data, headers in [({"status": "ignored"}, {}),
                          ({"status": "ignored", "csrf": "0" * 64}, {}),
                          ({"status": "ignored"}, {"X-CSRF-Token": "nope"})]:
        r = s.post(url, data=data, headers=headers, allow_redirects=False)
        assert r.status_code == 403 and "CSRF" in r.text, r.text
    # Pages carry the hardening headers.
    h = s.get(f"{sl.url}/ui/issues/{issue['id']}").headers
    assert h["x-frame-options"] == "DENY" and h["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in h["content-security-policy"] and "script-src 'self'" in h["content-security-policy"]
    # Behind a TLS proxy the cookie is Secure.
    r = requests.post(sl.url + "/ui/login", data={"token": TOKEN}, headers={"X-Forwarded-Proto": "https"},
                      allow_redirects=False)
    assert "; Secure" in r.headers["set-cookie"] and "HttpOnly" in r.headers["set-cookie"]
    # The right token, but sent from another site's page.
    page = s.get(f"{sl.url}/ui/issues/{issue['id']}").text
    token = re.search(r'name="csrf" value="([0-9a-f]{64})"', page).group(1)
    r = s.post(url, data={"status": "ignored", "csrf": token}, headers={"Origin": "http://evil.example"},
               allow_redirects=False)
    assert r.status_code == 403
    assert api(sl, f"/api/v1/issues/{issue['id']}")["status"] == issue["status"]
    # Behind a proxy that rewrote Host, the forwarded host is this site.
    r = s.post(url, data={"status": "unresolved", "csrf": token},
               headers={"Origin": "https://sightline.example", "X-Forwarded-Host": "sightline.example"},
               allow_redirects=False)
    assert r.status_code == 303, r.text
    # With the token it goes through (and is put back).
    r = s.post(url, data={"status": "ignored", "csrf": token}, allow_redirects=False)
    assert r.status_code == 303
    assert api(sl, f"/api/v1/issues/{issue['id']}")["status"] == "ignored"
    r = s.post(url, data={"status": "unresolved", "csrf": token}, allow_redirects=False)
    assert api(sl, f"/api/v1/issues/{issue['id']}")["status"] == "unresolved"
    # Logging out ends the session: the old cookie no longer works.
    cookie = s.cookies.get("sightline_session")
    r = s.post(sl.url + "/ui/logout", data={"csrf": token}, allow_redirects=False)
    assert r.status_code == 303
    r = requests.get(sl.url + "/ui/", cookies={"sightline_session": cookie}, allow_redirects=False)
    assert r.status_code == 303 and "/ui/login" in r.headers["location"]


def test_every_page_in_the_browser(loaded, browser):
    sl, app = loaded
    d = browser
    login(d, sl.url)

    # Overview: the app with its health and request numbers, the open issue, the failing flow.
    visit(d, sl.url + "/ui/", "overview")
    row = d.find_element(By.XPATH, "//table//tr[td//b[text()='assessments']]")
    assert "ok" in row.text, row.text
    cells = row.find_elements(By.TAG_NAME, "td")
    assert float(cells[2].text) > 0, row.text  # requests/s from the scraped metrics
    assert "http metrics" in row.text
    assert "retake" in d.find_element(By.XPATH, "//section[h2[starts-with(., 'Failing flows')]]").text

    # Issues: the list with sparklines, filtered by environment and release.
    visit(d, sl.url + "/ui/issues?status=unresolved&environment=staging&release=assessments%401.4.2", "issues")
    rows = d.find_elements(By.CSS_SELECTOR, "#issues tbody tr")
    assert rows, d.page_source[:2000]
    titles = [r.text for r in rows]
    assert any("ValueError: score out of range" in t for t in titles), titles
    assert d.find_elements(By.CSS_SELECTOR, "#issues svg.spark rect"), "sparkline bars"
    visit(d, sl.url + "/ui/issues?status=unresolved&environment=nowhere")
    assert not d.find_elements(By.CSS_SELECTOR, "#issues tbody tr")

    # Logs: find the failing request by its id and follow it.
    visit(d, sl.url + "/ui/logs")
    box = d.find_element(By.ID, "q")
    box.clear()
    box.send_keys(f'request_id:"{FAILING}"')
    d.find_element(By.CSS_SELECTOR, "form.card button[type=submit]").click()
    WebDriverWait(d, 10).until(EC.presence_of_element_located((By.ID, "log-rows")))
    wait_chart(d, "#histogram")
    shot(d, "logs")
    assert not console_errors(d)
    assert "assessment_submit_failed" in d.find_element(By.ID, "log-rows").text
    # Facets: a click adds the value to the query.
    facet = d.find_element(By.XPATH, "//div[@class='facet'][h3[text()='level']]//a")
    facet.click()
    WebDriverWait(d, 10).until(EC.url_contains("level"))
    assert "level:" in d.find_element(By.ID, "q").get_attribute("value")
    # An error in the query is shown inline, with the column.
    visit(d, sl.url + "/ui/logs?q=" + requests.utils.quote("level:>=warning AND (", safe=""))
    assert "column" in d.find_element(By.CSS_SELECTOR, ".error").text

    # Request id → request view: the span waterfall, logs and the error on one timeline.
    visit(d, sl.url + "/ui/logs?q=" + requests.utils.quote(f'request_id:"{FAILING}"', safe=""))
    d.find_element(By.CSS_SELECTOR, "#log-rows details summary").click()
    d.find_element(By.CSS_SELECTOR, f"#log-rows a.id[href='/ui/requests/{FAILING}']").click()
    WebDriverWait(d, 10).until(EC.url_contains("/ui/requests/"))
    shot(d, "request")
    assert not console_errors(d)
    wf = d.find_element(By.CSS_SELECTOR, ".wf").text
    assert "score_submission" in wf and "POST /assessments/{assessment_id}/submit" in wf, wf
    assert "assessment_submit_failed" in wf  # a log line on the timeline
    assert d.find_elements(By.CSS_SELECTOR, ".wf .span.bad"), "the failing span is marked"
    # → the issue of its error.
    d.find_element(By.XPATH, "//div[contains(@class,'line') and contains(@class,'err')]//a[contains(., 'ValueError')]").click()
    WebDriverWait(d, 10).until(EC.url_contains("/ui/issues/"))
    shot(d, "issue")
    assert not console_errors(d)
    issue_url = d.current_url
    issue_id = re.search(r"/ui/issues/(\d+)", issue_url).group(1)
    page = d.find_element(By.TAG_NAME, "main").text
    assert "ValueError" in page and "score out of range" in page
    # In-app frames open with context lines; library frames folded.
    app_frames = d.find_elements(By.CSS_SELECTOR, "details.frame.app")
    assert app_frames and all(f.get_attribute("open") for f in app_frames[:3])
    assert any("app.py" in f.text for f in app_frames)
    assert d.find_elements(By.CSS_SELECTOR, ".frame pre .cur"), "the context line"
    # (Library frames are folded: this error has none; the Rust unit test of the page covers them.)
    assert "TAGS" in page.upper() and "environment" in page and "staging" in page
    assert FAILING in page  # the event's request, linked
    # → the logs of that request, from the issue.
    d.find_element(By.LINK_TEXT, "Open in Logs →").click()
    WebDriverWait(d, 10).until(EC.url_contains("/ui/logs"))
    assert "assessment_submit_failed" in d.find_element(By.ID, "log-rows").text
    assert not console_errors(d)

    # Resolve the issue in the browser; the API agrees; reopen.
    d.get(issue_url)
    press(d, sl, issue_id, "Resolve", "Reopen", "resolved")
    press(d, sl, issue_id, "Reopen", "Resolve", "unresolved")
    assert not console_errors(d)

    # Traces: search for failing traces, open one.
    visit(d, sl.url + "/ui/traces?status=error", "traces")
    d.find_element(By.CSS_SELECTOR, "#traces a.id").click()
    WebDriverWait(d, 10).until(EC.url_contains("/ui/traces/"))
    shot(d, "trace")
    assert d.find_elements(By.CSS_SELECTOR, ".wf .span.bad")
    # A span opens to its attributes; its request id links to the request view.
    # (FastAPI's own server span wraps the app's; the request id is on the app's, and on
    # FastAPI's when it captured the x-request-id header.)
    servers = d.find_elements(By.XPATH, "//div[contains(@class,'sp')]//summary[contains(., 'POST /assessments')]")
    assert len(servers) == 2, [x.text for x in servers]
    for x in servers:
        x.click()
    opened = [x.find_element(By.XPATH, "./..") for x in servers]
    assert all("http.response.status_code" in o.text for o in opened), [o.text for o in opened]
    links = [a for o in opened for a in o.find_elements(By.CSS_SELECTOR, "a[href^='/ui/requests/']")]
    texts = {a.text for a in links}
    assert len(texts) == 1 and texts <= {RETAKE, FAILING}, texts
    assert not console_errors(d)

    # Flows: the retake flow failed at clear_answers; its timeline.
    visit(d, sl.url + "/ui/flows", "flows")
    assert "clear_answers" in d.find_element(By.ID, "stopped").text
    d.find_element(By.XPATH, "//tr[td/span[text()='failed']]//a[contains(@href, '/ui/flows/')]").click()
    WebDriverWait(d, 10).until(EC.url_contains("/ui/flows/"))
    shot(d, "flow")
    assert "clear_answers" in d.find_element(By.ID, "steps").text
    assert not console_errors(d)

    # Metrics: a PromQL query as a chart (legend, a series per status) and as a table.
    visit(d, sl.url + "/ui/metrics")
    ta = d.find_element(By.CSS_SELECTOR, "textarea[name=q]")
    ta.send_keys("sum by (status) (rate(http_requests_total[1m]))")
    d.find_element(By.XPATH, "//button[text()='Run query']").click()
    WebDriverWait(d, 10).until(EC.url_contains("q=sum"))
    wait_chart(d, "#graph")
    legend = d.find_element(By.CSS_SELECTOR, "#graph .u-legend").text
    assert 'status="200"' in legend and 'status="500"' in legend, legend
    shot(d, "metrics")
    assert not console_errors(d)
    d.find_element(By.CSS_SELECTOR, "input[name=view][value=table]").click()
    d.find_element(By.XPATH, "//button[text()='Run query']").click()
    WebDriverWait(d, 10).until(EC.presence_of_element_located((By.ID, "result")))
    assert 'status="500"' in d.find_element(By.ID, "result").text
    # A bad query: the engine's error inline.
    visit(d, sl.url + "/ui/metrics?q=" + requests.utils.quote("sum(", safe=""))
    assert d.find_element(By.CSS_SELECTOR, ".error").text
    # Ready panels of the service.
    visit(d, sl.url + "/ui/metrics?service=assessments", "metrics-service")
    wait_chart(d, "#panel-0")

    # Health: the app ok with uptime bars and its dependencies.
    visit(d, sl.url + "/ui/health", "health")
    card = d.find_element(By.ID, "svc-assessments")
    assert "ok" in card.text and card.find_elements(By.CSS_SELECTOR, ".uptime span.ok")

    # Settings: the project DSNs with copy buttons and the setup snippets.
    visit(d, sl.url + "/ui/settings", "settings")
    assert "0123456789abcdef0123456789abcdef@" in d.find_element(By.ID, "projects").text
    assert "sentry_sdk.init" in d.page_source and "OTEL_EXPORTER_OTLP_ENDPOINT" in d.page_source
    assert app.url in d.find_element(By.ID, "targets").text
    d.find_element(By.CSS_SELECTOR, "#projects button[data-copy]").click()
    WebDriverWait(d, 5).until(lambda d: d.find_element(By.CSS_SELECTOR, "#projects button[data-copy]").text == "Copied")
    assert TOKEN not in d.page_source  # tokens are masked

    # Logs: drag across the histogram to zoom into that time range.
    visit(d, sl.url + "/ui/logs?range=15m")
    wait_chart(d, "#histogram")
    over = d.find_element(By.CSS_SELECTOR, "#histogram .u-over")
    w = over.size["width"]
    # From 60 % of the way to the right edge (the lines are from the last minute).
    ActionChains(d).move_to_element_with_offset(over, int(w * 0.6) - w // 2, 0).click_and_hold() \
        .move_by_offset(int(w * 0.395), 0).release().perform()
    WebDriverWait(d, 10).until(EC.url_contains("start="))
    assert "end=" in d.current_url and "Zoomed to" in d.page_source
    assert d.find_elements(By.CSS_SELECTOR, "#log-rows tbody tr"), "lines in the zoomed range"
    assert not console_errors(d)

    # Live tail: a line logged now shows up without a reload.
    visit(d, sl.url + "/ui/logs")
    d.execute_script("window.__same_page = true")
    d.find_element(By.CSS_SELECTOR, "button[data-tail]").click()
    WebDriverWait(d, 10).until(lambda d: d.find_element(By.CSS_SELECTOR, "button[data-tail]").text == "Stop tail")
    time.sleep(0.5)  # the stream is open
    line = '{"event": "tail_probe_7731", "level": "warning", "service": "assessments"}\n'
    r = requests.post(sl.url + "/api/v1/logs/ingest", data=line, timeout=10)
    assert r.status_code == 200, r.text
    WebDriverWait(d, 10).until(lambda d: "tail_probe_7731" in d.find_element(By.ID, "log-rows").text)
    assert d.execute_script("return window.__same_page") is True
    d.find_element(By.CSS_SELECTOR, "button[data-tail]").click()
    assert not console_errors(d)

    # The overview refreshes itself: a dependency goes down, the page shows it
    # (and the new issue of the app's warning) without a reload.
    visit(d, sl.url + "/ui/?refresh=1")
    d.execute_script("window.__same_page = true")
    open_before = int(d.find_element(By.XPATH, "//a[@class='stat'][span[text()='open']]/b").text)
    requests.post(app.url + "/admin/dependencies/redis/down", timeout=10)
    app.flush()
    try:
        WebDriverWait(d, 20).until(lambda d: "degraded" in d.find_element(By.XPATH, "//tr[td//b[text()='assessments']]").text)
        WebDriverWait(d, 20).until(
            lambda d: int(d.find_element(By.XPATH, "//a[@class='stat'][span[text()='open']]/b").text) == open_before + 1)
        assert d.execute_script("return window.__same_page") is True
        assert not console_errors(d)
        visit(d, sl.url + "/ui/health", "health-degraded")
        card = d.find_element(By.ID, "svc-assessments")
        assert card.find_elements(By.CSS_SELECTOR, ".uptime span.warn") or card.find_elements(By.CSS_SELECTOR, ".uptime span.bad")
    finally:
        requests.post(app.url + "/admin/dependencies/redis/up", timeout=10)

    # Every page again: no console errors anywhere.
    for p in PAGES:
        visit(d, sl.url + p)


def test_pages_work_without_javascript(loaded):
    """With JavaScript off the pages still show their data (charts say so), and
    resolving an issue is a plain form post."""
    sl, _ = loaded
    opts = Options()
    opts.binary_location = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
    for a in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1440,1000"]:
        opts.add_argument(a)
    opts.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    d = webdriver.Chrome(service=Service(executable_path=os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver")),
                         options=opts)
    try:
        login(d, sl.url)
        visit(d, sl.url + "/ui/logs?q=" + requests.utils.quote(f'request_id:"{FAILING}"', safe=""))
        assert "assessment_submit_failed" in d.find_element(By.ID, "log-rows").text
        # No script ran (no chart was drawn); the page says why.
        assert not d.find_elements(By.CSS_SELECTOR, "#histogram canvas")
        assert "Charts need JavaScript" in d.page_source
        issue = [i for i in api(sl, "/api/v1/issues")["issues"] if i["title"].startswith("ValueError")][0]
        visit(d, f"{sl.url}/ui/issues/{issue['id']}", "issue-nojs")
        assert d.find_elements(By.CSS_SELECTOR, "details.frame.app[open] pre .cur")
        press(d, sl, issue["id"], "Ignore", "Reopen", "ignored")
        press(d, sl, issue["id"], "Reopen", "Ignore", "unresolved")
        visit(d, sl.url + "/ui/requests/" + FAILING)
        assert "score_submission" in d.find_element(By.CSS_SELECTOR, ".wf").text
    finally:
        d.quit()


def test_hostile_parameters_get_an_answer_not_a_crash(loaded):
    """Bad ids and parameters: a page with the reason (4xx or an inline error), never a 5xx."""
    sl, _ = loaded
    s = requests.Session()
    s.post(sl.url + "/ui/login", data={"token": TOKEN, "next": "/ui/"})
    long = "x" * 100_000
    cases = {
        "/ui/issues/abc": 400, "/ui/issues/999999": 404, "/ui/issues/1?event=zz": 200,
        "/ui/traces/zzzz": 400, "/ui/traces/" + "0" * 32: 404,
        "/ui/requests/" + "r" * 300: 400, "/ui/requests/no-such-request": 404, "/ui/flows/no-such-flow": 404,
        "/ui/logs?q=%22unclosed": 200, "/ui/logs?q=a%20|%20count%20by%20(": 200,
        "/ui/logs?start=garbage&end=also": 200, "/ui/logs?range=forever": 200, "/ui/logs?q=" + long: 414, "/ui/logs?q=" + "y" * 8000: 200,
        "/ui/logs?q=%ff%fe": 200, "/ui/logs?cursor=not-a-cursor": 200,
        "/ui/issues?status=nope&sort=sideways&period=-1": 200, "/ui/issues?project=no-such": 200,
        "/ui/traces?min_duration=soon&status=maybe": 200, "/ui/flows?status=weird&range=1y": 200,
        "/ui/metrics?q=" + requests.utils.quote("rate(x[5m]", safe=""): 200, "/ui/metrics?q=%00&view=table": 200,
        "/ui/metrics?service=%22%7D%20or%20vector(1)%20%23": 200,
    }
    for path, want in cases.items():
        r = s.get(sl.url + path, timeout=30)
        assert r.status_code == want, (path[:80], r.status_code, r.text[:300])
        if want == 414:  # hyper refuses the URI itself
            continue
        assert "<html" in r.text, path[:80]
        if want >= 400 or "q=" in path:
            assert 'class="error"' in r.text or r.status_code == 200, path[:80]
    # An oversized form is refused before it is read in full.
    cookie_page = s.get(sl.url + "/ui/issues").text
    token = re.search(r'name="csrf" value="([0-9a-f]{64})"', cookie_page).group(1)
    r = s.post(sl.url + "/ui/issues/1/status", data={"csrf": token, "status": "x" * 200_000}, allow_redirects=False)
    assert r.status_code == 413, r.status_code
    # A status the API refuses: its reason, not a crash.
    r = s.post(sl.url + "/ui/issues/1/status", data={"csrf": token, "status": "sideways"}, allow_redirects=False)
    assert r.status_code == 400 and "status" in r.text
