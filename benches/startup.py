#!/usr/bin/env python3
"""Start-up time: from exec of the release binary to the first 200 from /healthz.

    cargo build --release && python3 benches/startup.py

Runs the daemon on its built-in defaults in a temporary directory (dry-run, fresh SQLite
file), five times, and prints each time and the median.
"""
import os
import statistics
import subprocess
import tempfile
import time
import urllib.request

BIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "roam-notify")
times = []
for _ in range(5):
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, ROAM_NOTIFY__SERVER__LISTEN="127.0.0.1:18099")
        env.pop("ROAM_NOTIFY_ROAM_API_KEY", None)
        t = time.perf_counter()
        p = subprocess.Popen([BIN, "serve"], cwd=d, env=env, stderr=subprocess.DEVNULL)
        while True:
            try:
                urllib.request.urlopen("http://127.0.0.1:18099/healthz", timeout=0.2)
                break
            except Exception:
                if time.perf_counter() - t > 10:
                    raise SystemExit("daemon did not answer within 10 s")
                time.sleep(0.001)
        times.append((time.perf_counter() - t) * 1e3)
        p.terminate()
        p.wait()
print("start to /healthz 200: " + ", ".join(f"{x:.1f} ms" for x in times) + f"; median {statistics.median(times):.1f} ms")
