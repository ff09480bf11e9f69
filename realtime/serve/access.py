"""Who may use the server: API keys (Authorization: Bearer KEY; a browser's WebSocket offers it as the subprotocol
bearer.KEY, since it cannot set headers), admin keys for reloading, and the web pages (origins) whose scripts may
call it. Keys are compared in constant time and never logged or echoed."""

import hmac
import ipaddress
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from emotion.config import ServeConfig
from emotion.errors import ConfigError

KEY_FORMAT = re.compile(r"[A-Za-z0-9._~-]{16,}")  # a word a WebSocket subprotocol can carry
PROTOCOL = "fer.v1"  # the subprotocol the server answers a browser that offered its key as bearer.KEY
BEARER_PROTOCOL = "bearer."
KEY_NEEDED = 4401  # the stream's close code for a missing or wrong key (the page then asks for one)
LOOPBACK_NAMES = {"localhost", "ip6-localhost"}


@dataclass(frozen=True)
class Keys:
    users: frozenset[str] = frozenset()
    admins: frozenset[str] = frozenset()

    @property
    def required(self) -> bool:
        return bool(self.users or self.admins)

    def allows(self, key: str | None, admin: bool = False) -> bool:
        """Whether key opens the server (admin: may also reload); any key when none are set."""
        if not self.required:
            return True
        allowed = self.admins if admin else self.users | self.admins
        return key is not None and any(hmac.compare_digest(key.encode(), known.encode()) for known in allowed)


class RateLimit:
    """A token bucket per key: `rate` requests a second, in bursts of up to twice that; rate 0: no limit. Only valid
    keys reach it, so it holds one bucket per configured key at most."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self.clock = rate, 2 * rate, clock
        self.buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when counted)

    def wait_s(self, key: str) -> float:
        """0 when the key may make a request now (which is counted), else the seconds until it may."""
        if not self.rate:
            return 0.0
        now = self.clock()
        tokens, last = self.buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1:
            self.buckets[key] = (tokens - 1, now)
            return 0.0
        self.buckets[key] = (tokens, now)
        return (1 - tokens) / self.rate


def load_keys(cfg: ServeConfig) -> Keys:
    """The keys of serve.api_keys, serve.admin_keys and serve.api_keys_file; ConfigError for a malformed one (never
    quoting it) or an unreadable file."""
    users, admins = set(cfg.api_keys), set(cfg.admin_keys)
    if cfg.api_keys_file:
        try:
            lines = Path(cfg.api_keys_file).read_text().splitlines()
        except OSError as err:
            raise ConfigError(f"serve.api_keys_file={cfg.api_keys_file}: cannot read it ({err.strerror})") from err
        for number, line in enumerate(lines, 1):
            words = line.split("#")[0].split()
            if not words:
                continue
            if len(words) > 2 or (len(words) == 2 and words[1] != "admin"):
                raise ConfigError(f"{cfg.api_keys_file} line {number}: write KEY or KEY admin")
            (admins if len(words) == 2 else users).add(words[0])
    for source, keys in (("serve.api_keys", users), ("serve.admin_keys", admins)):
        if any(not KEY_FORMAT.fullmatch(key) for key in keys):
            raise ConfigError(f"{source}: a key must be 16 or more letters, digits or . _ ~ - (make one with python -c "
                              "\"import secrets; print(secrets.token_urlsafe(32))\")")
    return Keys(frozenset(users), frozenset(admins))


def is_loopback(host: str) -> bool:
    """Whether listening on host serves this machine only."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(cfg: ServeConfig, keys: Keys) -> None:
    """ConfigError when the server would listen beyond this machine with no keys (unless allow_anonymous), or answer
    only loopback Host names there."""
    if is_loopback(cfg.host):
        return
    if not keys.required and not cfg.allow_anonymous:
        raise ConfigError(f"serve.host={cfg.host} lets other machines in, and no key is set: set serve.api_keys_file "
                          "(or serve.api_keys), or serve.allow_anonymous=true to serve everyone who can reach it")
    if all(is_loopback(host) for host in cfg.allowed_hosts):
        raise ConfigError(f"serve.host={cfg.host}: name the host names clients use in serve.allowed_hosts, e.g. "
                          "'serve.allowed_hosts=[fer.example.org]' (or [\"*\"] for any)")


def bearer_key(headers) -> str | None:
    """The key a request carries: Authorization: Bearer KEY, or a WebSocket subprotocol bearer.KEY."""
    scheme, _, key = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and key.strip():
        return key.strip()
    for protocol in headers.get("sec-websocket-protocol", "").split(","):
        if protocol.strip().startswith(BEARER_PROTOCOL):
            return protocol.strip().removeprefix(BEARER_PROTOCOL)
    return None


def origin_allowed(origin: str | None, own: str, allowed: list[str]) -> bool:
    """Whether a request's Origin (set by browsers only) is the server's own page or a configured one; "null"
    (sandboxed frames, local files) never is."""
    return origin is None or origin == own or origin in allowed
