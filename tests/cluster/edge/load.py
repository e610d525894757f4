"""Steady GET load through NGINX from a second process, for the fault tests.

    python -m tests.cluster.edge.load OUT_FILE URL [URL ...] --cert CERT [--header NAME:VALUE]

Runs until its stdin closes, then exits; each thread cycles through the URLs. Writes one JSON
line per request to OUT_FILE: ``{"t": <unix time>, "id": <request id>, "url": ..., "status":
200, "server": "app1"}``, or ``"error"`` instead of status and server when no response came
back at all (with ``"truncated": true`` when the headers came and the body was cut off).
"""

import argparse
import itertools
import json
import sys
import threading
import time
import uuid

import requests

# How long a request may take before it counts as failed. NGINX gives an upstream 60 s to answer
# (proxy_read_timeout); a request that reaches a just-restarted server waits in its listen queue
# until a worker has loaded Django, which on a loaded two-core machine has taken 8-14 s. That
# request is slow, not failed: the faults under test must not fail requests, and a slow one is
# still answered.
ANSWER_WITHIN = 30.0


def run(urls: list[str], out: str, cert: str, headers: dict[str, str], threads: int) -> None:
    stop = threading.Event()
    lock = threading.Lock()
    run_id = uuid.uuid4().hex[:8]
    numbers = itertools.count()

    with open(out, "w") as sink:

        def record(entry: dict[str, object]) -> None:
            with lock:
                sink.write(json.dumps(entry) + "\n")
                sink.flush()

        def loop() -> None:
            session = requests.Session()
            session.trust_env = False
            session.verify = cert
            session.headers.update(headers)
            for url in itertools.cycle(urls):
                if stop.is_set():
                    return
                request_id = f"load-{run_id}-{next(numbers)}"
                started = time.time()
                try:
                    response = session.get(url, headers={"X-Request-ID": request_id}, timeout=ANSWER_WITHIN)
                except requests.exceptions.ChunkedEncodingError as error:
                    # the status line and headers came, the body was cut off
                    entry = {"t": started, "id": request_id, "url": url, "error": repr(error)}
                    record({**entry, "truncated": True})
                    continue
                except requests.RequestException as error:
                    record({"t": started, "id": request_id, "url": url, "error": repr(error)})
                    continue
                record(
                    {
                        "t": started,
                        "id": request_id,
                        "url": url,
                        "status": response.status_code,
                        "server": response.headers.get("X-Served-By", ""),
                    }
                )

        workers = [threading.Thread(target=loop) for _ in range(threads)]
        for worker in workers:
            worker.start()
        sys.stdin.read()  # the parent closes our stdin to stop us
        stop.set()
        for worker in workers:
            worker.join()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("urls", nargs="+")
    parser.add_argument("--cert", required=True)
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    headers = dict(item.split(":", 1) for item in args.header)
    run(args.urls, args.out, args.cert, {k.strip(): v.strip() for k, v in headers.items()}, args.threads)


if __name__ == "__main__":
    main()
