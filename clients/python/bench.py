"""Figures of the Python client against a running node, one JSON object on
the last line (the keys `wray bench` reports beside its own):

    python3 clients/python/bench.py [--address URL] [--module c_math.wasm]

- py_task_sync_p50_ms: `wray.get(m.add.remote(1, 2))`, one at a time
  (median of 1,000);
- py_tasks_async_per_s: 10,000 submitted, then all got;
- http_task_wait_p50_ms: one `POST /api/tasks?wait` round trip, on one
  kept-alive connection (median of 1,000).
"""

import argparse
import http.client
import json
import statistics
import sys
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import wray  # noqa: E402


def main() -> None:
    root = Path(__file__).resolve().parents[2]
    p = argparse.ArgumentParser()
    p.add_argument("--address", default="http://127.0.0.1:8265")
    p.add_argument("--module", default=str(root / "target/wasm32-wasip1/release/c_math.wasm"))
    p.add_argument("--sync", type=int, default=1000)
    p.add_argument("--async-n", type=int, default=10000)
    a = p.parse_args()
    wray.init(address=a.address)
    m = wray.load(a.module)
    for _ in range(50):
        wray.get(m.add.remote(1, 2))

    times = []
    for _ in range(a.sync):
        t = time.perf_counter()
        assert wray.get(m.add.remote(1, 2)) == 3
        times.append((time.perf_counter() - t) * 1e3)
    sync_p50 = statistics.median(times)

    t = time.perf_counter()
    refs = [m.add.remote(i, 1) for i in range(a.async_n)]
    values = wray.get(refs)
    async_per_s = a.async_n / (time.perf_counter() - t)
    assert values[-1] == a.async_n
    del refs

    u = urllib.parse.urlparse(a.address)
    conn = http.client.HTTPConnection(u.hostname, u.port)
    body = json.dumps({"module": m.digest, "function": "add", "args": [1, 2]})
    headers = {"Content-Type": "application/json"}
    times = []
    for _ in range(a.sync):
        t = time.perf_counter()
        conn.request("POST", "/api/tasks?wait=10", body, headers)
        r = conn.getresponse()
        doc = json.loads(r.read())
        times.append((time.perf_counter() - t) * 1e3)
        assert doc["result"] == 3, doc
    http_p50 = statistics.median(times)

    print(json.dumps({
        "py_task_sync_p50_ms": round(sync_p50, 3),
        "py_tasks_async_per_s": round(async_per_s),
        "http_task_wait_p50_ms": round(http_p50, 3),
    }))


if __name__ == "__main__":
    main()
