"""Hiding what could be a password in URL text that did not parse.

A URL that parsed renders itself without its password (:meth:`poolwarden.URL.render`).
One that did not parse is shown in the error that says why, so its password must be found
without trusting its shape: the rules here are deliberately greedy. Anything that could be
a password is replaced by ``***``:

- the value of a ``password``, ``passwd``, ``pwd`` or ``sslpassword`` query option;
- with ``scheme://`` and an ``@``: everything between the first ``:`` of the user part and
  the last ``@`` (a password may hold ``/ ? # @`` that were not percent-encoded);
- with ``scheme://`` and no ``@``: everything after a ``:`` that is not followed by a port
  number (``user:password`` with its ``@host`` forgotten);
- without ``://`` (or with no scheme at all), in doubt: everything from the first ``:``
  after the scheme to the last ``@``, or everything after the scheme when there is no ``@``.
"""

from __future__ import annotations

import re

__all__ = ["SECRET_OPTIONS", "authority_end", "mask_url_text", "url_text_secrets"]

#: Query options that carry a password (drivers and libpq accept them in the URL too).
SECRET_OPTIONS = frozenset({"password", "passwd", "pwd", "sslpassword"})

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+._-]*")
_SECRET_QUERY = re.compile(
    r"[?&;](?:" + "|".join(sorted(SECRET_OPTIONS)) + r")=([^&#;]*)", re.IGNORECASE
)


def _is_port(text: str) -> bool:
    """Empty, or a number a port can be (``00000000`` is more likely a password)."""
    return text == "" or (text.isdigit() and len(text) <= 5 and 1 <= int(text) <= 65535)


def authority_end(text: str, start: int) -> int:
    """Where the host part that starts at ``start`` ends (``/``, ``?``, ``#`` or the end)."""
    ends = [i for i in (text.find(c, start) for c in "/?#") if i >= 0]
    return min(ends, default=len(text))


def _userinfo_span(text: str) -> tuple[int, int] | None:
    """The stretch of ``text`` that may hold the password of the user part, if any."""
    scheme = _SCHEME.match(text)
    if scheme is None:
        return (0, len(text)) if text else None  # no scheme at all: hide everything
    proper = text.startswith("://", scheme.end())
    start = scheme.end()
    while start < len(text) and text[start] in ":/":
        start += 1  # the separator, however mistyped
    at = text.rfind("@")
    if at >= start:
        colon = text.find(":", start, at)
        if colon >= 0:
            return colon + 1, at
        # "user@host" is normal; without "://" the user part itself is in doubt.
        return None if proper else (start, at)
    if not proper:
        colon = text.find(":", start)
        return (colon + 1 if colon >= 0 else start, len(text))
    end = authority_end(text, start)
    authority = text[start:end]
    if authority.startswith("["):
        close = authority.find("]")
        if close < 0:
            colon = authority.find(":")
            return (start + colon + 1, len(text)) if colon >= 0 else None
        start, authority = start + close + 1, authority[close + 1 :]
    colon = authority.find(":")
    if colon < 0 or _is_port(authority[colon + 1 :]):
        return None  # no colon, or a port number
    return start + colon + 1, len(text)


def _spans(text: str) -> list[tuple[int, int]]:
    spans = [m.span(1) for m in _SECRET_QUERY.finditer(text) if m.group(1)]
    userinfo = _userinfo_span(text)
    if userinfo is not None and userinfo[0] < userinfo[1]:
        spans.append(userinfo)
    return sorted(spans)


def mask_url_text(text: str) -> str:
    """``text`` (a URL as given, parsed or not) with anything that could be a password
    replaced by ``***``."""
    out, position = [], 0
    for start, end in _spans(text):
        if start < position:  # overlaps a stretch already hidden: hide its tail too
            position = max(position, end)
            continue
        out.append(text[position:start] + "***")
        position = end
    out.append(text[position:])
    return "".join(out)


def url_text_secrets(text: str) -> set[str]:
    """The stretches of ``text`` :func:`mask_url_text` hides, as written."""
    return {text[start:end] for start, end in _spans(text)}
