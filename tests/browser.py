"""A real headless Chromium (Debian's package) driven over the DevTools protocol, for page tests.

The protocol runs over a pipe (``--remote-debugging-pipe``: the browser reads commands on fd 3
and writes replies and events on fd 4, each a JSON object ended by a NUL byte), so no port, no
WebSocket library and no driver download are needed. ``load`` opens a page and records every
request the page made, what came back for it, and every request that failed or was blocked
(CSP included), the way a person's browser would have fetched them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.programs import require_program
from tests.support import stop_process


@dataclass
class Fetch:
    url: str
    kind: str  # the DevTools resource type: Document, Stylesheet, Script, Image, Font, ...
    status: int | None = None
    failure: str = ""  # net::ERR_..., or the reason a request was blocked ("csp", ...)
    headers: dict[str, str] = field(default_factory=dict)  # the response's, names in lower case


@dataclass
class Page:
    fetches: list[Fetch] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def of_kind(self, *kinds: str) -> list[Fetch]:
        return [fetch for fetch in self.fetches if fetch.kind in kinds]

    def broken(self, *kinds: str) -> list[Fetch]:
        """Fetches of these kinds that failed, were blocked or did not answer 2xx/304."""
        return [
            fetch
            for fetch in self.of_kind(*kinds)
            if fetch.failure or fetch.status is None or not (200 <= fetch.status < 300 or fetch.status == 304)
        ]


class Browser:
    def __init__(self, profile: Path, *, timeout: float = 30.0) -> None:
        chromium = require_program("chromium", "chromium")
        self.timeout = timeout
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()

        def wire_fds() -> None:  # in the child: its fd 3 reads our commands, fd 4 writes replies
            command_fd = fcntl.fcntl(to_browser_read, fcntl.F_DUPFD, 10)
            reply_fd = fcntl.fcntl(from_browser_write, fcntl.F_DUPFD, 10)
            os.dup2(command_fd, 3, inheritable=True)
            os.dup2(reply_fd, 4, inheritable=True)

        self.process = subprocess.Popen(
            [
                chromium,
                "--headless=new",
                "--remote-debugging-pipe",
                "--no-sandbox",  # root in a container: the sandbox needs user namespaces
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--ignore-certificate-errors",  # the local cluster's self-signed certificate
                "--no-first-run",
                "--no-default-browser-check",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=wire_fds,
            pass_fds=(3, 4),
        )
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]

    def close(self) -> None:
        with contextlib.suppress(OSError, TimeoutError, RuntimeError):
            self.call("Browser.close")
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)  # it closes itself when asked
        stop_process(self.process, timeout=10)  # one that did not is made to
        os.close(self._to_browser)
        os.close(self._from_browser)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the protocol ------------------------------------------------------------------------
    def _send(self, method: str, params: dict[str, Any], session: str | None) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        return self._next_id

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the browser did not answer in time")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if ready:
                chunk = os.read(self._from_browser, 1 << 16)
                if not chunk:
                    raise RuntimeError(f"the browser exited ({self.process.poll()})")
                self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(raw)

    def call(self, method: str, *, session: str | None = None, **params: Any) -> dict[str, Any]:
        wanted = self._send(method, params, session)
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._receive(deadline)
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self._events.append(message)

    def page_call(self, method: str, **params: Any) -> dict[str, Any]:
        return self.call(method, session=self.session, **params)

    # --- what a test uses -------------------------------------------------------------------
    def load(
        self, url: str, *, headers: dict[str, str] | None = None, cookies: tuple[dict[str, Any], ...] = ()
    ) -> Page:
        """Open ``url`` and wait for its load event and for the network to settle."""
        self.page_call("Network.enable")
        self.page_call("Page.enable")
        self.page_call("Runtime.enable")
        self.page_call("Network.setCacheDisabled", cacheDisabled=True)
        if headers:
            self.page_call("Network.setExtraHTTPHeaders", headers=headers)
        for cookie in cookies:
            self.page_call("Network.setCookie", **cookie)
        self._events.clear()
        self.page_call("Page.navigate", url=url)
        page = Page()
        by_id: dict[str, Fetch] = {}
        deadline = time.monotonic() + self.timeout
        loaded_at: float | None = None
        while True:
            # after the load event, wait until nothing is in flight for half a second
            pending = [f for f in by_id.values() if f.status is None and not f.failure]
            if loaded_at is not None and not pending and time.monotonic() - loaded_at > 0.5:
                break
            try:
                message = (
                    self._events.pop(0)
                    if self._events
                    else self._receive(min(deadline, time.monotonic() + 0.5))
                )
            except TimeoutError:
                if time.monotonic() >= deadline:
                    raise
                continue
            method, params = message.get("method"), message.get("params", {})
            if method == "Network.requestWillBeSent":
                by_id[params["requestId"]] = Fetch(url=params["request"]["url"], kind=params.get("type", ""))
                page.fetches.append(by_id[params["requestId"]])
            elif method == "Network.responseReceived" and params["requestId"] in by_id:
                fetch = by_id[params["requestId"]]
                fetch.status = params["response"]["status"]
                fetch.headers = {k.lower(): v for k, v in params["response"].get("headers", {}).items()}
            elif method == "Network.loadingFailed" and params["requestId"] in by_id:
                fetch = by_id[params["requestId"]]
                fetch.failure = params.get("blockedReason") or params.get("errorText") or "failed"
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                page.console_errors.append(" ".join(str(a.get("value", "")) for a in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                page.console_errors.append(params["exceptionDetails"].get("text", "exception"))
            elif method == "Page.loadEventFired":
                loaded_at = time.monotonic()
        return page

    def evaluate(self, expression: str) -> Any:
        result = self.page_call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")
