#!/usr/bin/env python3
"""How long this disk takes to make a small write durable (what every webhook ack waits for).

    python3 benches/fsync_probe.py [seconds] [directory]

Appends 4 KiB and calls fdatasync about once a millisecond for `seconds` (default 20) in
`directory` (default: target/), then prints the latency distribution.
"""
import os
import sys
import time

secs = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
where = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target")
os.makedirs(where, exist_ok=True)
path = os.path.join(where, "fsync-probe.tmp")
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
lat = []
end = time.time() + secs
try:
    while time.time() < end:
        os.write(fd, b"x" * 4096)
        t = time.perf_counter()
        os.fdatasync(fd)
        lat.append(time.perf_counter() - t)
        time.sleep(0.001)
finally:
    os.close(fd)
    os.unlink(path)
lat.sort()
n = len(lat)
q = lambda p: lat[min(n - 1, int(n * p))] * 1e3
print(f"{n} fdatasyncs over {secs:.0f}s: p50 {q(0.5):.3f} ms, p99 {q(0.99):.3f} ms, "
      f"p99.9 {q(0.999):.3f} ms, max {lat[-1] * 1e3:.1f} ms; over 20 ms: {sum(1 for x in lat if x > 0.02)}")
