"""Reading an application's Prometheus endpoint: what ``poolwarden watch`` shows.

An endpoint is fetched with the standard library and parsed by prometheus_client's own
parser; its samples become one :class:`PoolSample` per pool (the
``db_client_connection_pool_name`` label), named by :data:`poolwarden.metrics.METRICS`.
"""

from __future__ import annotations

import base64
import math
import re
import socket
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from .._net.url_mask import mask_url_text
from ..metrics import METRICS, POOL_NAME

__all__ = [
    "Endpoint",
    "PoolSample",
    "ScrapeError",
    "normalize",
    "parse_endpoint",
    "pools_in",
    "scrape",
]

#: The Prometheus label of an attribute (what the collector names it: dots become
#: underscores), for the pool name and the two labels read here.
POOL_LABEL = POOL_NAME.replace(".", "_")
STATE_LABEL = "db_client_connection_state"
CAUGHT_BY_LABEL = "poolwarden_caught_by"

#: A metrics page larger than this is not a pool's: refuse it rather than hold it.
MAX_BYTES = 32 << 20

_BY_NAME = {metric.name: metric for metric in METRICS}


def _sample_name(otel_name: str, suffix: str = "") -> str:
    return _BY_NAME[otel_name].prometheus + suffix


#: Sample name -> the key it is filed under (``count`` and ``dead_caught`` by a label).
GAUGES = {
    _sample_name("db.client.connection.max"): "max",
    _sample_name("db.client.connection.pending_requests"): "pending",
}
_COUNTER_METRICS = {
    "timeouts": "db.client.connection.timeouts",
    **{
        key: f"poolwarden.connection.{key}"
        for key in ("checkouts", "replaced", "lost", "leaks", "invalidations", "retired",
                    "reclaimed", "pings", "create_errors")
    },
}  # fmt: skip
COUNTERS = {_sample_name(otel): key for key, otel in _COUNTER_METRICS.items()}
COUNT = _sample_name("db.client.connection.count")
DEAD_CAUGHT = _sample_name("poolwarden.connection.dead_caught")
HISTOGRAMS = {
    _sample_name(f"db.client.connection.{key}_time", "_bucket"): key
    for key in ("wait", "use", "create")
}


class ScrapeError(Exception):
    """An endpoint that could not be read, worded as one line naming it (masked)."""


@dataclass(frozen=True)
class Endpoint:
    """A metrics endpoint: ``url`` to fetch (no user part), ``shown`` for every output
    (any password masked) and the basic-auth credentials the user part gave."""

    url: str
    shown: str
    auth: tuple[str, str] | None = field(default=None, repr=False)


def normalize(text: str) -> str:
    """``host:port`` as ``http://host:port/metrics``, ``host:port/path`` as
    ``http://host:port/path``; a URL unchanged."""
    given = text.strip()
    if "://" in given:
        return given
    return "http://" + given + ("" if "/" in given else "/metrics")


def parse_endpoint(text: str) -> Endpoint:
    """``http(s)://host[:port][/path]``, or ``host:port[/path]`` (see :func:`normalize`);
    ValueError (with the text masked) for anything else."""
    given = normalize(text)
    shown = mask_url_text(given)
    parts = urlsplit(given)
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(
            f"{shown}: expected an http:// or https:// URL of a metrics endpoint, or "
            "host:port (meaning http://host:port/metrics)"
        )
    try:
        port = parts.port
    except ValueError:
        port = -1
    if not parts.hostname or port == -1:
        raise ValueError(f"{shown}: expected a host and an optional port number, e.g. "
                         "http://127.0.0.1:8000/metrics or 127.0.0.1:8000")  # fmt: skip
    userinfo, at, hostport = parts.netloc.rpartition("@")
    auth = None
    if at:
        user, _, password = userinfo.partition(":")
        auth = (unquote(user), unquote(password))
    url = parts._replace(netloc=hostport).geturl()
    return Endpoint(url, shown, auth)


@dataclass
class PoolSample:
    """One pool's samples from one scrape: gauges and counters by key (``used``,
    ``idle``, ``max``, ``pending``, ``timeouts``, ``dead_probe``...), and each
    histogram's cumulative buckets as ``{upper bound: count}`` (``wait``, ``use``,
    ``create``)."""

    values: dict[str, float] = field(default_factory=dict)
    buckets: dict[str, dict[float, float]] = field(default_factory=dict)


def pools_in(samples: Iterable[tuple[str, dict[str, str], float]]) -> dict[str, PoolSample]:
    """The pools among ``(name, labels, value)`` samples, by pool name; samples of other
    metrics, or without the pool label, are ignored."""
    pools: dict[str, PoolSample] = {}
    for name, labels, value in samples:
        pool_name = labels.get(POOL_LABEL)
        if pool_name is None:
            continue
        key = _key(name, labels)
        if key is None:
            continue
        pool = pools.setdefault(pool_name, PoolSample())
        if name in HISTOGRAMS:
            bound = float(labels.get("le", "nan"))
            if not math.isnan(bound):
                pool.buckets.setdefault(key, {})[bound] = value
        else:
            # create_errors has a sample per error class and code: their sum.
            pool.values[key] = pool.values.get(key, 0.0) + value
    return pools


def _key(name: str, labels: dict[str, str]) -> str | None:
    if name == COUNT:
        state = labels.get(STATE_LABEL)
        return state if state in ("used", "idle") else None
    if name == DEAD_CAUGHT:
        return "dead_" + labels.get(CAUGHT_BY_LABEL, "other")
    return GAUGES.get(name) or COUNTERS.get(name) or HISTOGRAMS.get(name)


def scrape(endpoint: Endpoint, timeout: float = 5.0) -> dict[str, PoolSample]:
    """Fetch and parse ``endpoint``; its pools (maybe none). Raises :class:`ScrapeError`."""
    from prometheus_client.parser import text_string_to_metric_families

    body = _fetch(endpoint, timeout)
    try:
        families = list(text_string_to_metric_families(body))
    except Exception as exc:  # the parser raises ValueError, and others on odd input
        detail = re.sub(r"\s+", " ", str(exc))[:120]
        raise ScrapeError(
            f"{endpoint.shown} does not serve Prometheus metrics (text format): {detail}"
        ) from None
    return pools_in((s.name, s.labels, s.value) for f in families for s in f.samples)


def _fetch(endpoint: Endpoint, timeout: float) -> str:
    # Ask for the classic text format: an OpenMetrics page would parse too, but this is
    # what the parser is made for.
    headers = {"Accept": "text/plain; version=0.0.4", "User-Agent": "poolwarden-watch"}
    if endpoint.auth is not None:
        token = base64.b64encode(":".join(endpoint.auth).encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    request = urllib.request.Request(endpoint.url, headers=headers)
    where = endpoint.shown
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data: bytes = response.read(MAX_BYTES + 1)
            charset = str(response.headers.get_content_charset() or "utf-8")
    except urllib.error.HTTPError as exc:
        raise ScrapeError(f"{where} answered HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise ScrapeError(f"cannot fetch {where}: {_reason(exc.reason)}") from None
    except TimeoutError:  # while reading the body (a connect timeout is a URLError)
        raise ScrapeError(f"cannot fetch {where}: no answer within {timeout:g} s") from None
    except (OSError, ValueError) as exc:  # a reset connection, a malformed status line
        raise ScrapeError(f"cannot fetch {where}: {type(exc).__name__}: {exc}") from None
    if len(data) > MAX_BYTES:
        raise ScrapeError(f"{where} serves more than {MAX_BYTES >> 20} MB: not a metrics page")
    try:
        return data.decode(charset)
    except (UnicodeDecodeError, LookupError):
        raise ScrapeError(f"{where} does not serve text in {charset}") from None


def _reason(reason: object) -> str:
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused (is the application running and serving metrics there?)"
    if isinstance(reason, TimeoutError):
        return "no answer in time"
    if isinstance(reason, socket.gaierror):
        return f"unknown host name ({reason.strerror})"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason)
