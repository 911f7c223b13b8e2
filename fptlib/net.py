"""Every network call fptlib makes goes through here: time limits, an HTTP probe, offline mode.

Offline, stated once:

* ``FPT_OFFLINE=1``: fptlib opens no connection to another machine. Probes answer "unreachable"
  at once and downloads are refused with a message; the Hugging Face hub counts as offline too.
  Loopback hosts (``127.0.0.1``, ``::1``, ``localhost``: a local mirror) stay allowed.
* ``HF_HUB_OFFLINE=1`` (Hugging Face's own variable): the hub only; data downloads still run.

Time limits, in seconds (environment variables override the defaults, read at each call):

* ``FPT_CONNECT_TIMEOUT`` (10): open a connection, TLS handshake included.
* ``FPT_READ_TIMEOUT`` (30): wait for the next bytes of an answer.
* ``FPT_PROBE_DEADLINE`` (5): a whole reachability probe, name lookup included.
* ``FPT_DOWNLOAD_DEADLINE`` (3600): a whole download (one file).

``reachable(url)`` sends a HEAD request and waits for an HTTP answer: any status counts, a bare
TCP connect does not (a proxy, captive portal or firewall may accept connections and never
answer). ``stream(url, out)`` copies a response into a file under the connect and read timeouts
and the total deadline. Known gap: outside a probe, the name lookup (DNS) has no timeout of its
own in Python's socket module.
"""
from __future__ import annotations

import functools
import http.client
import ipaddress
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

DEFAULTS = {"FPT_CONNECT_TIMEOUT": 10.0, "FPT_READ_TIMEOUT": 30.0, "FPT_PROBE_DEADLINE": 5.0,
            "FPT_DOWNLOAD_DEADLINE": 3600.0}
PROBE_TTL_S = 60.0  # a probe's answer is reused this long (a notebook asks per task)


class NetworkError(RuntimeError):
    """A network call failed, timed out or is not allowed (offline); the message says which."""


def _flag(name: str) -> bool:
    """An on/off switch from the environment; any other value is an error, not "off" (a typo such
    as FPT_OFFLINE=2 must not send a machine meant to stay offline onto the network)."""
    raw = os.environ.get(name, "").strip().lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("", "0", "false", "no", "off"):
        return False
    raise ValueError(f"${name}={os.environ[name]!r} is neither on nor off: set it to 1 (on) or 0 (off)")


def seconds(name: str) -> float:
    """The time limit ``name`` (one of DEFAULTS), from the environment or its default."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return DEFAULTS[name]
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"${name}={raw!r} must be a positive number of seconds "
                         f"(default {DEFAULTS[name]:g})")
    return value


@dataclass(frozen=True)
class Limits:
    connect: float
    read: float
    deadline: float

    @classmethod
    def download(cls) -> "Limits":
        return cls(seconds("FPT_CONNECT_TIMEOUT"), seconds("FPT_READ_TIMEOUT"),
                   seconds("FPT_DOWNLOAD_DEADLINE"))

    @classmethod
    def probe(cls) -> "Limits":
        deadline = seconds("FPT_PROBE_DEADLINE")
        return cls(min(seconds("FPT_CONNECT_TIMEOUT"), deadline),
                   min(seconds("FPT_READ_TIMEOUT"), deadline), deadline)


def is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def offline(url: str | None = None, hub: bool = False) -> bool:
    """Whether fptlib must not contact ``url`` (any remote host when None) now; see the module doc."""
    if hub and _flag("HF_HUB_OFFLINE"):
        return True
    return _flag("FPT_OFFLINE") and not (url is not None and is_loopback(url))


def offline_note(url: str | None = None, hub: bool = False) -> str:
    """Words for a message about an unreachable host: which offline switch is set, or ""."""
    if not offline(url, hub=hub):
        return ""
    names = [n for n in ("FPT_OFFLINE", "HF_HUB_OFFLINE") if _flag(n) and (hub or n == "FPT_OFFLINE")]
    return f" ({' and '.join(names)} set: unset to go online)"


# ---- HTTP with a connect timeout and a separate read timeout ------------------------------
class _ReadTimeout:
    """Connect under the connection's ``timeout``, then wait at most ``read_timeout`` per read."""

    def __init__(self, *args, read_timeout: float, **kwargs):
        super().__init__(*args, **kwargs)
        self._read_timeout = read_timeout

    def connect(self):
        super().connect()
        self.sock.settimeout(self._read_timeout)


class _HTTP(_ReadTimeout, http.client.HTTPConnection):
    pass


class _HTTPS(_ReadTimeout, http.client.HTTPSConnection):
    pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, read_timeout: float):
        super().__init__()
        self.read_timeout = read_timeout

    def http_open(self, req):
        return self.do_open(functools.partial(_HTTP, read_timeout=self.read_timeout), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, read_timeout: float):
        super().__init__()
        self.read_timeout = read_timeout

    def https_open(self, req):
        return self.do_open(functools.partial(_HTTPS, read_timeout=self.read_timeout), req,
                            context=self._context)


def open_url(url: str, limits: Limits, *, method: str = "GET", headers: dict | None = None):
    """An urllib response (proxies and redirects as urllib does them) under ``limits``.

    Raises ``urllib.error.HTTPError`` for an HTTP error status, NetworkError when offline,
    ``OSError`` (timeouts included) when the host does not answer.
    """
    if offline(url):
        raise NetworkError(f"not downloading {url}: FPT_OFFLINE is set (unset it to allow "
                           f"network access)")
    opener = urllib.request.build_opener(_HTTPHandler(limits.read), _HTTPSHandler(limits.read))
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    return opener.open(request, timeout=limits.connect)


def stream(response, out, deadline_at: float, what: str, on_block=None) -> None:
    """Copy ``response`` into the binary file ``out`` until its end or ``deadline_at``.

    ``read1`` returns what one socket read brings, so a server that drips bytes cannot keep us
    past the deadline by more than one read timeout.
    """
    while True:
        if time.monotonic() > deadline_at:
            raise TimeoutError(f"{what} did not finish within its deadline "
                               f"(FPT_DOWNLOAD_DEADLINE={seconds('FPT_DOWNLOAD_DEADLINE'):g} s)")
        block = response.read1(1 << 16)
        if not block:
            return
        out.write(block)
        if on_block is not None:
            on_block(len(block))


# ---- reachability ------------------------------------------------------------------------
_PROBES: dict[tuple[str, str, int], tuple[float, bool]] = {}


def _answers(url: str, limits: Limits) -> bool:
    try:
        with open_url(url, limits, method="HEAD"):
            return True
    except urllib.error.HTTPError:  # any HTTP status is an answer: the host is there
        return True
    except (OSError, http.client.HTTPException, NetworkError):
        return False


def reachable(url: str, hub: bool = False) -> bool:
    """True when ``url``'s host sends an HTTP answer within FPT_PROBE_DEADLINE seconds.

    False at once when offline (see the module doc). The probe runs in a daemon thread joined
    with the deadline, so even a name lookup that hangs cannot hold the caller. Answers are
    reused for PROBE_TTL_S seconds per host.
    """
    if offline(url, hub=hub):
        return False
    parts = urllib.parse.urlsplit(url)
    key = (parts.scheme, parts.hostname or "", parts.port or 0)
    now = time.monotonic()
    if key in _PROBES and now - _PROBES[key][0] < PROBE_TTL_S:
        return _PROBES[key][1]
    limits = Limits.probe()
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(_answers(url, limits)), daemon=True,
                              name="fptlib-probe")
    thread.start()
    thread.join(limits.deadline)
    ok = bool(result and result[0])
    _PROBES[key] = (time.monotonic(), ok)
    return ok
