"""Discord's REST rate limits, as the fake enforces them once asked (``FakeDiscord(rate_limits=True)``).

Like Discord (https://discord.com/developers/docs/topics/rate-limits): each limited route counts
requests in a bucket per top-level resource (its channel, or its interaction token), in windows
that open with the first request and last ``per`` seconds; every bot-token request also counts
against the bot's global limit (interaction endpoints are not bound to it). A request over a
limit gets 429 and is not applied; an admitted one carries its bucket's X-RateLimit-* headers so
a client can wait before the next 429 instead of after it.
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RateLimit:
    limit: int  # requests per window
    per: float  # window length, seconds


# The limits Discord is known to apply to what this bot does. Discord documents the mechanism,
# not the numbers ("should not be hard coded"): these are the values its headers report.
MESSAGE_CREATE = RateLimit(5, 5.0)  # POST /channels/{id}/messages, per channel
MESSAGE_EDIT = RateLimit(5, 5.0)  # PATCH /channels/{id}/messages/{id}, per channel (its own bucket)
TYPING = RateLimit(5, 5.0)  # POST /channels/{id}/typing, per channel
# Followups and edits of the original response or of followups share the interaction webhook's
# bucket, per (application id, interaction token): Discord's webhook limit of 5 per 2 s.
WEBHOOK = RateLimit(5, 2.0)
# POST /interactions/{id}/{token}/callback, per interaction. Only one callback is ever accepted
# (40060 "already acknowledged", rest.py); the bucket itself is never exhausted by that one call.
INTERACTION_CALLBACK = RateLimit(5, 5.0)
GLOBAL = RateLimit(50, 1.0)  # every bot-token request, per bot; interaction routes excepted

# Bucket name -> its limit; ``FakeDiscord.enforce_rate_limits(**overrides)`` takes these names.
DEFAULT_LIMITS: dict[str, RateLimit] = {
    "message_create": MESSAGE_CREATE,
    "message_edit": MESSAGE_EDIT,
    "typing": TYPING,
    "webhook": WEBHOOK,
    "interaction_callback": INTERACTION_CALLBACK,
    "global_": GLOBAL,  # trailing underscore: ``global`` is a Python keyword
}

# RecordedRequest.kind of each limited route -> its bucket name.
ROUTE_BUCKETS: dict[str, str] = {
    "message.create": "message_create",
    "message.edit": "message_edit",
    "typing": "typing",
    "followup.create": "webhook",
    "webhook.edit": "webhook",
    "interaction.callback": "interaction_callback",
}

RATE_LIMITED_MESSAGE = "You are being rate limited."


@dataclass
class _Window:
    ends: float  # monotonic
    used: int = 0


@dataclass
class Admission:
    """What the limiter decided about one request."""

    bucket: str | None = None  # "<bucket name>:<top-level resource>", if the route is limited
    limit: RateLimit | None = None
    remaining: int = 0
    reset_after: float = 0.0
    refused: str | None = None  # None (admitted), "user" (its route bucket) or "global"
    retry_after: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        """The 429 body Discord sends."""
        return {"message": RATE_LIMITED_MESSAGE, "retry_after": self.retry_after, "global": self.refused == "global"}


def bucket_hash(name: str) -> str:
    """A stable X-RateLimit-Bucket value for a bucket name (shared by the routes in it)."""
    return format(zlib.crc32(f"bucket {name}".encode()), "08x")


def _ceil_ms(seconds: float) -> float:
    # Rounded up: a client that sleeps exactly Reset-After must not arrive before the window ends.
    return math.ceil(max(seconds, 0.0) * 1000) / 1000


class RateLimiter:
    """Windows per bucket and per bot token; off until ``enabled``."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.enabled = False
        self.limits: dict[str, RateLimit] = dict(DEFAULT_LIMITS)
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    def configure(self, enabled: bool, overrides: Mapping[str, RateLimit]) -> None:
        unknown = set(overrides) - set(DEFAULT_LIMITS)
        if unknown:
            raise ValueError(f"unknown rate-limit bucket(s) {sorted(unknown)}; known: {sorted(DEFAULT_LIMITS)}")
        self.enabled = enabled
        self.limits = {**DEFAULT_LIMITS, **overrides}
        self._windows.clear()

    def _window(self, key: str, limit: RateLimit, now: float) -> _Window:
        window = self._windows.get(key)
        if window is None or now >= window.ends:
            window = self._windows[key] = _Window(now + limit.per)
        return window

    def admit(self, *, kind: str, resource: str | None, bot_token: str | None) -> Admission:
        """Count a request (kind: RecordedRequest.kind; resource: its channel id or token; bot_token:
        its Authorization header, None on interaction routes) and say whether it may proceed."""
        if not self.enabled:
            return Admission()
        now = self._clock()
        name = ROUTE_BUCKETS.get(kind)
        route_limit = self.limits[name] if name is not None and resource is not None else None
        route_key = f"{name}:{resource}" if route_limit is not None else None
        # Discord checks the global limit first: a globally refused request does not use the route's bucket.
        if bot_token is not None:
            glimit = self.limits["global_"]
            gwindow = self._window(f"global:{bot_token}", glimit, now)
            if gwindow.used >= glimit.limit:
                retry = _ceil_ms(gwindow.ends - now)
                return Admission(
                    bucket=route_key,
                    refused="global",
                    retry_after=retry,
                    headers={
                        "Retry-After": str(max(1, math.ceil(retry))),
                        "X-RateLimit-Global": "true",
                        "X-RateLimit-Scope": "global",
                    },
                )
        admission = Admission(bucket=route_key, limit=route_limit)
        if route_limit is not None and route_key is not None and name is not None:
            # Per bot as well: Discord counts each bot's (each token's) requests separately.
            window = self._window(f"{bot_token}|{route_key}", route_limit, now)
            reset_after = _ceil_ms(window.ends - now)
            admission.reset_after = reset_after
            admission.headers = {
                "X-RateLimit-Limit": str(route_limit.limit),
                "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
                "X-RateLimit-Reset-After": f"{reset_after:.3f}",
                "X-RateLimit-Bucket": bucket_hash(name),
            }
            if window.used >= route_limit.limit:
                admission.refused = "user"
                admission.retry_after = reset_after
                admission.headers["X-RateLimit-Remaining"] = "0"
                admission.headers["Retry-After"] = str(max(1, math.ceil(reset_after)))
                admission.headers["X-RateLimit-Scope"] = "user"
                return admission
            window.used += 1
            admission.remaining = route_limit.limit - window.used
            admission.headers["X-RateLimit-Remaining"] = str(admission.remaining)
        if bot_token is not None:
            self._windows[f"global:{bot_token}"].used += 1
        return admission
