"""Memory at a steady ingest rate: posts BODY-line NDJSON bodies at RATE lines/s
for SECONDS to a running Sightline and samples its RSS every second.

    python3 bench/rss_at_rate.py URL PID BODY_DIR [RATE] [SECONDS]

Only the standard library: at 50 requests/s a Python client is far below its
ceiling here (PEERS.md), so the pacing is accurate.
"""

import http.client
import os
import sys
import time
import urllib.parse


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    url, pid, body_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    rate = int(sys.argv[4]) if len(sys.argv) > 4 else 50_000
    seconds = int(sys.argv[5]) if len(sys.argv) > 5 else 30
    names = sorted(os.listdir(body_dir))
    bodies = [open(os.path.join(body_dir, n), "rb").read() for n in names[:200]]
    lines_per_body = bodies[0].count(b"\n")
    per_second = max(1, rate // lines_per_body)
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    path = u.path + ("?" + u.query if u.query else "")
    samples, sent, failed, i = [], 0, 0, 0
    start = time.monotonic()
    for sec in range(seconds):
        tick = start + sec
        for k in range(per_second):
            due = tick + k / per_second
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            conn.request("POST", path, body=bodies[i % len(bodies)],
                         headers={"Content-Type": "application/x-ndjson"})
            resp = conn.getresponse()
            resp.read()
            i += 1
            if resp.status == 200:
                sent += lines_per_body
            else:
                failed += 1
        samples.append(rss_mb(pid))
    elapsed = time.monotonic() - start
    samples.sort()
    print(f"rate {sent / elapsed:,.0f} lines/s for {elapsed:.0f} s, non-2xx {failed}; "
          f"RSS median {samples[len(samples) // 2]:.0f} MB, max {samples[-1]:.0f} MB")


if __name__ == "__main__":
    main()
