"""One interface for the platform clients, and the machinery they share.

Each platform module holds an :class:`httpx.Auth` that signs requests (and, where the
platform's token-expired error is recognisable, refreshes once and retries), a reader of its
error envelope (:class:`Envelope`), a :class:`PlatformClient` subclass built from that auth
and an :class:`ApiSession`, and its :class:`~nfdoctor.platforms.spec.PlatformSpec`.

A response is decoded once (:func:`read_response`): the same body serves classification,
the caller and token parsing.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import hashlib
import hmac
import json
import math
import random
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import httpx

from nfdoctor.platforms.errors import (
    BadCredentialsError,
    BadParametersError,
    BodyProblem,
    Category,
    RateLimitedError,
    RefreshTokenInvalidError,
    TaxonomyError,
    TokenExpiredError,
    TokenInvalidError,
    TransientError,
    UnexpectedResponseError,
    UnreachableError,
    error_for_category,
    scrub,
    strip_query,
)
from nfdoctor.platforms.ratelimit import (
    RateLimitUsage,
    clock_skew_s,
    parse_date_header,
    parse_retry_after,
    parse_usage_headers,
)

__all__ = [
    "ApiSession",
    "Clock",
    "ConnectionSlots",
    "Envelope",
    "EnvelopeReader",
    "FetchRetry",
    "JsonObject",
    "PingResult",
    "PlatformAuth",
    "PlatformClient",
    "RequestStats",
    "TokenInfo",
    "TokenSet",
    "abs_time",
    "appsecret_proof",
    "decode_json",
    "envelope_error",
    "http_fallback_error",
    "read_response",
    "rel_time",
    "retry_call",
    "seconds_of",
    "transport_error",
    "utc_now",
]

JsonObject = dict[str, Any]
Clock = Callable[[], datetime]
T = TypeVar("T")


def utc_now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(timezone.utc)


def appsecret_proof(app_secret: str, access_token: str) -> str:
    """``hex_lower(HMAC_SHA256(app_secret, access_token))``: Meta's proof, and Zalo's."""
    return hmac.new(app_secret.encode(), access_token.encode(), hashlib.sha256).hexdigest()


def seconds_of(value: object, *, platform: str, field: str) -> float:
    """A platform's number of seconds (int, float or numeric string), or
    UnexpectedResponseError naming the field: "never", ``{}`` or ``inf`` is schema drift."""
    number = math.nan
    if not isinstance(value, bool):
        with contextlib.suppress(ValueError):
            number = float(str(value))
    if not math.isfinite(number):
        raise UnexpectedResponseError(
            f"{field} is not a number of seconds", platform=platform, field=field
        )
    return number


def rel_time(now: datetime, seconds: object, *, platform: str, field: str) -> datetime:
    """A REL expiry (seconds remaining, int or numeric string) as an absolute datetime."""
    try:
        return now + timedelta(seconds=seconds_of(seconds, platform=platform, field=field))
    except OverflowError:
        raise UnexpectedResponseError(
            f"{field} is out of range", platform=platform, field=field
        ) from None


def abs_time(timestamp: object, *, platform: str, field: str) -> datetime:
    """An ABS expiry (Unix seconds, int or numeric string) as an aware UTC datetime."""
    seconds = seconds_of(timestamp, platform=platform, field=field)
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise UnexpectedResponseError(
            f"{field} is out of range", platform=platform, field=field
        ) from None


def _mask(value: str) -> str:
    return f"***({len(value)} chars)" if value else "''"


@dataclass(frozen=True, kw_only=True)
class TokenSet:
    """A token pair with absolute expiries; ``repr`` masks both tokens."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    access_expires_at: datetime
    refresh_expires_at: datetime | None

    def __repr__(self) -> str:
        return (
            f"TokenSet(access_token={_mask(self.access_token)},"
            f" refresh_token={_mask(self.refresh_token)},"
            f" access_expires_at={self.access_expires_at!r},"
            f" refresh_expires_at={self.refresh_expires_at!r})"
        )


@dataclass(frozen=True, kw_only=True)
class TokenInfo:
    """What the platform says about a token (Facebook ``debug_token``)."""

    is_valid: bool | None  # None: the answer lacked the field (see shape_problems)
    token_type: str | None
    app_id: str | None
    expires_at: datetime | None  # None: never expires (``expires_at: 0``)
    data_access_expires_at: datetime | None
    issued_at: datetime | None
    scopes: tuple[str, ...]
    shape_problems: tuple[str, ...] = ()  # fields nfdoctor reads that the answer lacked


@dataclass(frozen=True, kw_only=True)
class PingResult:
    """The outcome of one cheap authenticated call."""

    latency_s: float
    http_status: int
    server_date: datetime | None
    clock_skew_s: float | None  # local minus server; positive = local clock ahead
    rate_limit: RateLimitUsage | None
    shape_problems: tuple[str, ...] = ()  # schema drift against what nfdoctor expects
    #: seconds spent waiting for one of nfdoctor's own connection slots before sending
    queued_s: float = 0.0


def decode_json(response: httpx.Response, platform: str) -> JsonObject:
    """The response body as a JSON object, or UnexpectedResponseError (HTML, truncated…)
    whose ``problem`` says which."""
    status = response.status_code
    content_type = response.headers.get("content-type", "").lower()
    body = response.content
    if "text/html" in content_type or body.lstrip()[:1] == b"<":
        raise UnexpectedResponseError(
            f"HTML error page, HTTP {status}",
            platform=platform,
            http_status=status,
            problem=BodyProblem.HTML,
        )
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise UnexpectedResponseError(
            f"malformed or truncated JSON, HTTP {status}",
            platform=platform,
            http_status=status,
            problem=BodyProblem.MALFORMED,
        ) from None
    if not isinstance(data, dict):
        raise UnexpectedResponseError(
            f"JSON body is not an object, HTTP {status}",
            platform=platform,
            http_status=status,
            problem=BodyProblem.NOT_OBJECT,
        )
    return data


def _rate_limited_by_status(
    response: httpx.Response, platform: str, now: datetime
) -> RateLimitedError:
    return RateLimitedError(
        f"rate limited, HTTP {response.status_code}",
        platform=platform,
        http_status=response.status_code,
        retry_after_s=parse_retry_after(response.headers.get("retry-after"), now),
    )


def unreadable_body_error(
    response: httpx.Response, exc: UnexpectedResponseError, platform: str, now: datetime
) -> TaxonomyError:
    """The error for a body that is not a JSON object: by its status first (429, a 5xx
    with a truncated body), else the body problem itself."""
    if response.status_code == 429:
        return _rate_limited_by_status(response, platform, now)
    if response.status_code >= 500 and exc.problem is BodyProblem.MALFORMED:
        return TransientError(
            f"server error with unreadable body, HTTP {response.status_code}",
            platform=platform,
            http_status=response.status_code,
        )
    return exc


def http_fallback_error(
    response: httpx.Response, platform: str, now: datetime
) -> TaxonomyError | None:
    """The error for a body that is not a JSON object (HTML page, truncated JSON…), or None."""
    try:
        decode_json(response, platform)
    except UnexpectedResponseError as exc:
        return unreadable_body_error(response, exc, platform, now)
    return None


@dataclass(frozen=True, kw_only=True)
class Envelope:
    """A platform error envelope read from a decoded body: its code and its category.

    Each platform module reads its own envelope (Shopee's ``error``, Lazada's string
    ``code``, TikTok's integer ``code``, Graph's ``error.code``/``error_subcode``, Zalo's
    ``error``); :func:`read_response` does everything around it.
    """

    code: str
    category: Category
    request_id: str | None = None
    message: str | None = None
    #: how long to wait when the platform throttles without a Retry-After header
    default_retry_after_s: float | None = None


#: reads a platform's error envelope from a decoded body; None when the body is a success
EnvelopeReader = Callable[[JsonObject, httpx.Response], "Envelope | None"]


def read_response(
    response: httpx.Response,
    *,
    platform: str,
    envelope: EnvelopeReader,
    now: datetime,
    secrets: tuple[str, ...] = (),
) -> tuple[JsonObject | None, TaxonomyError | None]:
    """Decode ``response`` once and classify it: ``(body, None)`` on success, ``(body or
    None, error)`` otherwise. The platform's own text is scrubbed of ``secrets``."""
    try:
        body = decode_json(response, platform)
    except UnexpectedResponseError as exc:
        return None, unreadable_body_error(response, exc, platform, now)
    found = envelope(body, response)
    if found is None:
        return body, status_only_error(response, platform, now)
    error = envelope_error(
        found.category,
        platform=platform,
        response=response,
        code=found.code,
        request_id=found.request_id,
        platform_message=scrub(found.message, secrets) if found.message else None,
        now=now,
    )
    if (
        isinstance(error, RateLimitedError)
        and error.retry_after_s is None
        and found.default_retry_after_s is not None
    ):
        error.retry_after_s = found.default_retry_after_s
    return body, error


def status_only_error(
    response: httpx.Response, platform: str, now: datetime
) -> TaxonomyError | None:
    """An error for a non-2xx status whose JSON body carried no recognisable platform error."""
    status = response.status_code
    if status == 429:
        return _rate_limited_by_status(response, platform, now)
    if status >= 500:
        return TransientError(f"server error, HTTP {status}", platform=platform, http_status=status)
    if status >= 400:
        return UnexpectedResponseError(
            f"HTTP {status} without a recognisable error body",
            platform=platform,
            http_status=status,
        )
    return None


def _cause_chain(exc: BaseException) -> Generator[BaseException, None, None]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def transport_error(platform: str, exc: httpx.TransportError, url: str) -> TaxonomyError:
    """Map an httpx transport exception to UnreachableError/TransientError with the phase."""
    where = strip_query(url)
    if isinstance(exc, httpx.ConnectTimeout):
        return UnreachableError(f"connect timeout to {where}", platform=platform, phase="connect")
    if isinstance(exc, httpx.ConnectError):
        phase = "connect"
        for cause in _cause_chain(exc):
            if isinstance(cause, socket.gaierror):
                phase = "dns"
                break
            if isinstance(cause, ssl.SSLError):
                phase = "tls"
                break
        return UnreachableError(f"{phase} failed for {where}", platform=platform, phase=phase)
    if isinstance(exc, httpx.PoolTimeout):
        return UnreachableError(f"pool timeout for {where}", platform=platform, phase="pool")
    if isinstance(exc, (httpx.ReadTimeout, httpx.WriteTimeout)):
        phase = "read" if isinstance(exc, httpx.ReadTimeout) else "write"
        return UnreachableError(f"{phase} timeout from {where}", platform=platform, phase=phase)
    if isinstance(exc, httpx.LocalProtocolError):
        # Refused here, before anything was sent: a header value HTTP does not allow, which
        # in practice is a token or id with a line break in it. Not the platform's fault.
        return BadParametersError(
            f"the request to {where} was not sent: a header holds characters HTTP does not "
            "allow (a token with a line break or a control character?)",
            platform=platform,
        )
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        return TransientError(
            f"connection dropped mid-response from {where} ({type(exc).__name__})",
            platform=platform,
            phase="read",
        )
    return TransientError(
        f"transport failure for {where} ({type(exc).__name__})", platform=platform, phase="other"
    )


def raise_for_refresh(error: TaxonomyError | None) -> None:
    """Raise ``error`` from a token endpoint; a token-class error there means the refresh
    token itself is bad (expired, used or revoked), whatever the access-token code says."""
    if isinstance(error, (TokenExpiredError, TokenInvalidError)):
        raise RefreshTokenInvalidError(
            error.message,
            platform=error.platform,
            http_status=error.http_status,
            code=error.code,
            request_id=error.request_id,
            platform_message=error.platform_message,
        )
    if error is not None:
        raise error


#: where :meth:`PlatformAuth.read` keeps a response's decoded body and classification
_READ_KEY = "nfdoctor.read"


class PlatformAuth(httpx.Auth, abc.ABC):
    """Signs each request; on a recognisable token-expired error refreshes once and retries.

    The refresh goes through ``on_refresh`` *before* the retried request is sent, so the
    caller can persist the rotated (single-use) refresh token under its lock first.
    """

    requires_request_body = True
    requires_response_body = True
    platform: str = "?"
    #: the partner key or app secret the platform signs with, if any
    signing_secret: str | None = None

    def __init__(
        self,
        *,
        access_token: str | None,
        clock: Clock = utc_now,
        refresh_token: str | None = None,
        on_refresh: Callable[[TokenSet], None] | None = None,
    ) -> None:
        self.access_token = access_token
        self.refresh_token = refresh_token
        self.on_refresh = on_refresh
        self.clock = clock

    def __repr__(self) -> str:
        return f"{type(self).__name__}(platform={self.platform!r})"

    def secrets(self) -> tuple[str, ...]:
        """Values to scrub from any platform text: the signing secret and both tokens."""
        candidates = (self.signing_secret, self.access_token, self.refresh_token)
        return tuple(s for s in candidates if s)

    @abc.abstractmethod
    def sign(self, request: httpx.Request) -> httpx.Request:
        """A signed copy of ``request`` (the original is left untouched for re-signing)."""

    @abc.abstractmethod
    def envelope(self, body: JsonObject, response: httpx.Response) -> Envelope | None:
        """The platform's error envelope in a decoded body, or None for a success."""

    def read(self, response: httpx.Response) -> tuple[JsonObject | None, TaxonomyError | None]:
        """``response`` decoded and classified, once: ``(body, error)``; the platform's text
        is scrubbed of :meth:`secrets`. Kept with the response for the next reader."""
        cached = response.extensions.get(_READ_KEY)
        if cached is not None and cached[0] is self:
            # Read by this auth already (its refresh check, then the caller): same answer.
            return cached[1]  # type: ignore[no-any-return]
        result = read_response(
            response,
            platform=self.platform,
            envelope=self.envelope,
            now=self.clock(),
            secrets=self.secrets(),
        )
        response.extensions[_READ_KEY] = (self, result)
        return result

    def classify(self, response: httpx.Response) -> TaxonomyError | None:
        """The classified error in ``response``, or None on success."""
        return self.read(response)[1]

    def build_refresh_request(self, refresh_token: str) -> httpx.Request | None:
        """The refresh call to yield on token expiry; None when this scheme cannot refresh."""
        return None

    def parse_refresh(self, response: httpx.Response) -> TokenSet:
        """Tokens from a refresh response; raises the classified error on failure."""
        raise RefreshTokenInvalidError("refresh not supported", platform=self.platform)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Sign, send; on token expiry refresh, persist via ``on_refresh``, re-sign, resend."""
        response = yield self.sign(request)
        if self.on_refresh is None or not self.refresh_token:
            return
        if not isinstance(self.classify(response), TokenExpiredError):
            return
        refresh_request = self.build_refresh_request(self.refresh_token)
        if refresh_request is None:
            return
        refresh_request.extensions = dict(request.extensions)
        refresh_response = yield refresh_request
        tokens = self.parse_refresh(refresh_response)
        self.on_refresh(tokens)
        self.access_token = tokens.access_token
        self.refresh_token = tokens.refresh_token
        yield self.sign(request)


def rebuild(
    request: httpx.Request,
    *,
    url: httpx.URL | None = None,
    content: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Request:
    """A copy of ``request`` with a new URL, body or extra headers."""
    new_headers = httpx.Headers(request.headers)
    if content is not None:
        new_headers.pop("content-length", None)
    for name, value in (headers or {}).items():
        new_headers[name] = value
    rebuilt = httpx.Request(
        request.method,
        url if url is not None else request.url,
        headers=new_headers,
        content=content if content is not None else request.content,
        extensions=dict(request.extensions),
    )
    return rebuilt


async def retry_call(
    call: Callable[[], Awaitable[T]],
    *,
    sleep: Callable[[float], Awaitable[None]],
    attempts: int = 3,
    max_wait_s: float = 60.0,
    base_backoff_s: float = 1.0,
    jitter: Callable[[], float] = random.random,
) -> T:
    """Run ``call``, retrying rate limits (honouring Retry-After) and transient failures."""
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except RateLimitedError as exc:
            if attempt == attempts:
                raise
            wait = exc.retry_after_s
            if wait is None:
                wait = base_backoff_s * 2 ** (attempt - 1) * (1 + jitter())
            if wait > max_wait_s:
                raise
            await sleep(wait)
        except TransientError:
            if attempt == attempts:
                raise
            await sleep(min(max_wait_s, base_backoff_s * 2 ** (attempt - 1) * (1 + jitter())))
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass
class RequestStats:
    """What a session sent and how the platform answered (every attempt counts)."""

    requests: int = 0
    retries: int = 0
    #: answers that said "rate limited" (HTTP 429 or the platform's own code)
    rate_limited: int = 0


@dataclass(frozen=True, kw_only=True)
class FetchRetry:
    """How a repeatable read is retried: bounded attempts, full-jitter exponential backoff
    for transient failures (AWS's "full jitter": a random wait up to the exponential cap, so
    many shops retrying together spread out), the platform's ``Retry-After`` for rate limits
    when it fits ``max_wait_s`` (else the error goes up, saying until when)."""

    attempts: int = 5
    base_s: float = 0.5
    cap_s: float = 20.0
    #: the longest single wait the run accepts (a Retry-After beyond it is not waited out)
    max_wait_s: float = 60.0
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    jitter: Callable[[], float] = random.random

    def wait_before_retry(self, error: TaxonomyError, attempt: int) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``; None: give up and raise."""
        if attempt >= self.attempts:
            return None
        if isinstance(error, RateLimitedError) and error.retry_after_s is not None:
            after = float(error.retry_after_s)
            return after if after <= self.max_wait_s else None
        return self.jitter() * min(self.cap_s, self.base_s * 2.0 ** (attempt - 1))


class ConnectionSlots:
    """The connections one platform may have open at once in a run, shared by its shops.

    nfdoctor's own cap, kept apart from the platform's latency: a call's time waiting for a
    slot is its queueing, measured on its own, and its latency starts once it has a slot
    (the HTTP client's pool is as large as the cap, so it never queues behind it).
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"a connection cap must be at least 1, got {limit}")
        self.limit = limit
        self._semaphore = asyncio.Semaphore(limit)

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[float]:
        """Wait for a slot; yields the seconds waited, releases the slot on exit."""
        started = time.perf_counter()
        async with self._semaphore:
            yield time.perf_counter() - started


class ApiSession:
    """What a client sends through: an HTTP client, the API base URL, the per-call timeout
    and, in a run, the connection slots shared by every shop of the platform.

    httpx's own pattern: the session is made once per platform and run and shared by every
    client of that platform; the platform session (:mod:`nfdoctor.session`) owns it and closes
    it. :meth:`standalone` makes one that owns its HTTP client, for one client on its own.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        timeout_s: float = 10.0,
        slots: ConnectionSlots | None = None,
        owns_http: bool = False,
        pacer: Callable[[], Awaitable[None]] | None = None,
        stats: RequestStats | None = None,
        retry: FetchRetry | None = None,
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.slots = slots
        self._owns_http = owns_http
        #: awaited before every request leaves (each attempt): the platform's shared rate
        #: limit in a sync run; None: send at once
        self.pacer = pacer
        #: counts of what was sent and how the platform answered (a sync run's summary)
        self.stats = stats if stats is not None else RequestStats()
        #: how :meth:`PlatformClient._fetch` retries (None: :class:`FetchRetry` defaults)
        self.retry = retry

    @classmethod
    def standalone(
        cls,
        base_url: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_s: float = 10.0,
    ) -> ApiSession:
        """A session with an HTTP client of its own (closed by :meth:`aclose`)."""
        http = httpx.AsyncClient(transport=transport, timeout=timeout_s, follow_redirects=False)
        return cls(http, base_url=base_url, timeout_s=timeout_s, owns_http=True)

    def __repr__(self) -> str:
        return f"ApiSession(base_url={self.base_url!r})"

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[float]:
        """Hold one of the platform's connection slots; yields the seconds spent queueing."""
        if self.slots is None:
            yield 0.0
            return
        async with self.slots.hold() as waited:
            yield waited

    async def aclose(self) -> None:
        """Close the HTTP client if this session made it."""
        if self._owns_http:
            await self.http.aclose()


class PlatformClient(abc.ABC):
    """The one interface every platform client offers to checks, token manager and sync.

    Built from its auth (credentials, tokens, signing, the clock) and a session (where and
    how to send): ``ShopeeClient(ShopeeAuth(...), session)``.
    """

    platform: str = "?"

    def __init__(self, auth: PlatformAuth, session: ApiSession) -> None:
        self.auth = auth
        self.session = session
        self.base_url = session.base_url
        #: local minus server clock from the last response's Date header, errors included:
        #: a request refused for its timestamp says so only through this
        self.last_clock_skew_s: float | None = None
        #: seconds the last call waited for one of nfdoctor's own connection slots
        self.last_queue_s: float = 0.0
        #: called with a refresh's response the moment it arrives, before it is parsed (the
        #: token refresher journals it there: a crash while parsing must not lose a new pair)
        self.on_refresh_response: Callable[[httpx.Response], None] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    @property
    def clock(self) -> Clock:
        """The clock requests are signed and judged with (the auth's)."""
        return self.auth.clock

    @property
    def timeout_s(self) -> float:
        """The per-call timeout."""
        return self.session.timeout_s

    async def aclose(self) -> None:
        """Close the session's connections if the session is this client's alone."""
        await self.session.aclose()

    async def __aenter__(self) -> PlatformClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    #: the request signer
    auth: PlatformAuth

    def classify(self, response: httpx.Response) -> TaxonomyError | None:
        """The classified platform error in ``response``, or None on success."""
        return self.auth.classify(response)

    def secrets(self) -> tuple[str, ...]:
        """Values to scrub from any platform text this client surfaces."""
        return self.auth.secrets()

    def _ping_result(
        self, response: httpx.Response, latency_s: float, shape_problems: Iterable[str]
    ) -> PingResult:
        """A PingResult read off the response headers (Date, rate-limit usage)."""
        date = response.headers.get("date")
        return PingResult(
            latency_s=latency_s,
            http_status=response.status_code,
            server_date=parse_date_header(date),
            clock_skew_s=clock_skew_s(date, self.clock()),
            rate_limit=parse_usage_headers(response.headers),
            shape_problems=tuple(shape_problems),
            queued_s=self.last_queue_s,
        )

    async def _send(
        self, request: httpx.Request, *, auth: httpx.Auth | None = None
    ) -> tuple[httpx.Response, float]:
        """Send within one connection slot: the response and the latency, which starts when
        the slot is held (queueing behind nfdoctor's own cap is not the platform's time)."""
        url = str(request.url)
        if self.session.pacer is not None:
            await self.session.pacer()
        self.session.stats.requests += 1
        async with self.session.slot() as waited:
            self.last_queue_s = waited
            started = time.perf_counter()
            try:
                if auth is None:
                    response = await self.session.http.send(request)
                else:
                    response = await self.session.http.send(request, auth=auth)
            except httpx.TransportError as exc:
                raise transport_error(self.platform, exc, url) from exc
            return response, time.perf_counter() - started

    async def _call(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: object = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: PlatformAuth | None = None,
    ) -> tuple[JsonObject, httpx.Response, float]:
        """Send, classify, decode: the JSON object, the response and the latency."""
        content: bytes | None = None
        send_headers = dict(headers or {})
        if json_body is not None:
            # Serialise once, compactly: TikTok signs the exact body bytes.
            content = json.dumps(json_body, separators=(",", ":")).encode()
            send_headers.setdefault("content-type", "application/json")
        request = self.session.http.build_request(
            method,
            url,
            params=params,
            content=content,
            data=data,
            headers=send_headers,
            timeout=self.timeout_s,
        )
        reader = auth or self.auth
        response, latency = await self._send(request, auth=auth)
        self.last_clock_skew_s = clock_skew_s(response.headers.get("date"), self.clock())
        body, error = reader.read(response)
        if error is not None:
            if isinstance(error, RateLimitedError):
                self.session.stats.rate_limited += 1
            raise error
        assert body is not None  # no error means a decoded body
        return body, response, latency

    async def _fetch(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: object = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[JsonObject, httpx.Response, float]:
        """:meth:`_call` for a read that may be repeated (a listing, a detail): rate limits and
        transient failures are retried as the session's :class:`FetchRetry` says, each
        attempt built and signed afresh (signatures carry timestamps)."""
        policy = self.session.retry or FetchRetry()
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._call(
                    method,
                    url,
                    params=params,
                    json_body=json_body,
                    headers=headers,
                    auth=self.auth,
                )
            except (RateLimitedError, TransientError) as exc:
                wait = policy.wait_before_retry(exc, attempt)
                if wait is None:
                    raise
                self.session.stats.retries += 1
                await policy.sleep(wait)

    @abc.abstractmethod
    async def ping(self) -> PingResult:
        """One cheap authenticated call: latency, clock skew, rate-limit usage, drift."""

    async def refresh(self, refresh_token: str) -> TokenSet:
        """Exchange ``refresh_token`` for a new token pair (absolute expiries) through the
        platform's token endpoint; the client then uses the new pair."""
        request = self.auth.build_refresh_request(refresh_token)
        if request is None:
            raise BadCredentialsError(
                f"{self.platform}: refreshing needs the app credentials and the account id",
                platform=self.platform,
            )
        # Built outside the client, so the request carries no timeout of its own.
        request.extensions["timeout"] = httpx.Timeout(self.timeout_s).as_dict()
        # Sent once: a refresh spends a single-use token, so a failure here is never retried
        # blindly (the refresher reports an unknown outcome instead).
        response, _ = await self._send(request)
        if self.on_refresh_response is not None:
            self.on_refresh_response(response)
        tokens = self.auth.parse_refresh(response)
        self.auth.access_token = tokens.access_token
        self.auth.refresh_token = tokens.refresh_token
        return tokens

    async def introspect(self) -> TokenInfo | None:
        """What the platform says about the current token; None where it has no such call."""
        return None


_PHRASES: dict[Category, str] = {
    Category.TOKEN_EXPIRED: "access token expired (or invalid)",
    Category.TOKEN_INVALID: "access token invalid or revoked",
    Category.REFRESH_TOKEN_INVALID: "refresh token invalid, expired or already used",
    Category.BAD_SIGNATURE: "signature, proof or timestamp rejected",
    Category.BAD_CREDENTIALS: "app/partner credentials or shop link rejected",
    Category.PERMISSION_DENIED: "permission denied",
    Category.RATE_LIMITED: "rate limited",
    Category.BAD_PARAMETERS: "request parameters rejected",
    Category.TRANSIENT: "server-side failure, retry later",
    Category.UNEXPECTED_RESPONSE: "unrecognised error code",
}


def envelope_error(
    category: Category,
    *,
    platform: str,
    response: httpx.Response,
    code: str,
    request_id: str | None,
    platform_message: str | None,
    now: datetime,
) -> TaxonomyError:
    """The taxonomy error for a platform error envelope already mapped to ``category``."""
    status = response.status_code
    message = f"{platform} error {code}: {_PHRASES[category]} (HTTP {status})"
    if category is Category.RATE_LIMITED:
        return RateLimitedError(
            message,
            platform=platform,
            http_status=status,
            code=code,
            request_id=request_id,
            platform_message=platform_message,
            retry_after_s=parse_retry_after(response.headers.get("retry-after"), now),
        )
    return error_for_category(
        category,
        message,
        platform=platform,
        http_status=status,
        code=code,
        request_id=request_id,
        platform_message=platform_message,
    )


def unknown_code_category(response: httpx.Response) -> Category:
    """The category for an error code nfdoctor does not know: by HTTP status only."""
    return Category.TRANSIENT if response.status_code >= 500 else Category.UNEXPECTED_RESPONSE
