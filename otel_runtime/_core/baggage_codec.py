"""The W3C ``baggage`` header, percent-encoded as the specification says, within the W3C limits.

The SDK's ``W3CBaggagePropagator`` encodes values with ``urllib.parse.quote_plus``: a space goes out
as ``+``, which every spec-following receiver (Java, Go, JavaScript, the Collector) reads back as a
literal ``+``. It also drops non-ASCII keys on the way in and strips spaces the sender encoded. This
codec:

- encodes each value as UTF-8, percent-encoding every octet outside a conservative safe set (space is
  ``%20``; ``%``, ``+``, ``,``, ``;``, ``=`` and ``"`` are always encoded), and decodes any
  percent-encoding, so a value round-trips exactly between two processes;
- reads a raw ``+`` as ``+``, as the spec says (``plus_as_space=True`` reads headers from senders that
  still use form encoding);
- holds the W3C limits outbound (180 list-members, 4096 bytes a member, 8192 bytes a header), sending
  otel_runtime's own run keys first so user entries cannot crowd them out, and drops whole members,
  never parts of one; it sends only the keys the :class:`BaggagePolicy` allows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Final
from urllib.parse import quote, unquote

from otel_runtime._base import keys as _keys
from otel_runtime._base.guard import warn_once
from otel_runtime._core.baggage_policy import RUN_KEYS, BaggagePolicy, get_policy

__all__ = [
    "BAGGAGE_HEADER",
    "MAX_HEADER_BYTES",
    "MAX_MEMBERS",
    "MAX_MEMBER_BYTES",
    "decode_baggage",
    "encode_baggage",
]

BAGGAGE_HEADER: Final = "baggage"
MAX_MEMBERS: Final = 180
MAX_MEMBER_BYTES: Final = 4096
MAX_HEADER_BYTES: Final = 8192

# RFC 7230 token: the W3C baggage key.
_KEY: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# W3C baggage-octet: what a value may hold on the wire before percent-decoding.
_WIRE_VALUE: Final = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")
# Left as they are when encoding: baggage-octets that no common decoder reads differently.
# (quote() also keeps letters, digits and "_.-~".) Everything else, "%+,;= and space included, is encoded.
_SAFE: Final = "!#$&'()*/:<>?@[]^`{|}"


def _ordered(entries: Mapping[str, object]) -> Iterator[tuple[str, object]]:
    """Our run keys first, in their fixed order, then the others as they were set."""
    for key in _keys.BAGGAGE_KEYS:
        if key in entries:
            yield key, entries[key]
    for key, value in entries.items():
        if key not in RUN_KEYS:
            yield key, value


def encode_baggage(entries: Mapping[str, object], policy: BaggagePolicy | None = None) -> str:
    """The ``baggage`` header for ``entries``: percent-encoded, within the W3C limits, policy applied.

    Members that cannot be sent (a key that is not a token, a member over 4096 bytes, one that would
    push the header over 8192 bytes or past 180 members, a key the policy refuses) are left out whole.
    """
    policy = policy or get_policy()
    members: list[str] = []
    size = 0
    for key, value in _ordered(entries):
        if not policy.allows(key):
            continue
        if _KEY.fullmatch(key) is None:
            warn_once(f"baggage-key:{key!r}", f"baggage key {key!r} is not a W3C token; not sent")
            continue
        member = f"{key}={quote(str(value), safe=_SAFE)}"
        if len(member) > MAX_MEMBER_BYTES:
            warn_once(f"baggage-size:{key}", f"baggage entry {key!r} is over {MAX_MEMBER_BYTES} bytes")
            continue
        added = len(member) + (1 if members else 0)
        if len(members) >= MAX_MEMBERS or size + added > MAX_HEADER_BYTES:
            warn_once(
                "baggage-header",
                f"baggage is over the W3C limits ({MAX_MEMBERS} entries, "
                f"{MAX_HEADER_BYTES} bytes); some entries were not sent",
            )
            continue
        members.append(member)
        size += added
    return ",".join(members)


def decode_baggage(headers: Iterable[str], *, plus_as_space: bool = False) -> dict[str, str]:
    """The entries of one or more ``baggage`` headers, percent-decoded.

    Malformed members, members over 4096 bytes and members past 180 or past 8192 bytes in all are
    ignored, never raised. Properties (``;name=value`` after a value) are dropped: the OpenTelemetry
    API has no place for them.
    """
    entries: dict[str, str] = {}
    size = 0
    count = 0
    for header in headers:
        for raw_member in header.split(","):
            member = raw_member.strip(" \t")
            if not member:
                continue
            member_bytes = len(member.encode("utf-8", "surrogatepass"))
            count += 1
            size += member_bytes + (1 if count > 1 else 0)
            if count > MAX_MEMBERS or size > MAX_HEADER_BYTES:
                return entries
            if member_bytes > MAX_MEMBER_BYTES:
                continue
            pair = member.split(";", 1)[0]
            key, equals, value = pair.partition("=")
            key, value = key.strip(" \t"), value.strip(" \t")
            if not equals or _KEY.fullmatch(key) is None or _WIRE_VALUE.fullmatch(value) is None:
                continue
            if plus_as_space:
                value = value.replace("+", " ")
            try:
                entries[key] = unquote(value, errors="strict")
            except UnicodeDecodeError:
                continue
    return entries
