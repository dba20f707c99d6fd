"""The platform error taxonomy, shared by the five clients.

    PlatformError (nfdoctor.errors)
    ├── TokenExpiredError         access token expired (refresh is the remedy)
    ├── TokenInvalidError         access token unknown/revoked (re-authorize)
    ├── RefreshTokenInvalidError  refresh token expired, reused or revoked (re-authorize)
    ├── BadSignatureError         sign / appsecret_proof / request timestamp rejected
    ├── BadCredentialsError       partner/app id or key wrong, shop not linked
    ├── PermissionDeniedError     API not granted, IP not allow-listed, window closed
    ├── RateLimitedError          throttled; ``retry_after_s`` when known
    ├── BadParametersError        the request itself is wrong (a client bug or bad input)
    ├── TransientError            5xx / server busy; retry later
    ├── UnexpectedResponseError   HTML page, malformed JSON, schema drift
    └── UnreachableError          DNS / connect / TLS / timeout, with the phase

Messages never carry tokens, secrets or signatures: URLs appear without their query string.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from nfdoctor.errors import PlatformError

__all__ = [
    "BadCredentialsError",
    "BadParametersError",
    "BadSignatureError",
    "BodyProblem",
    "Category",
    "PermissionDeniedError",
    "PlatformError",
    "RateLimitedError",
    "RefreshTokenInvalidError",
    "TaxonomyError",
    "TokenExpiredError",
    "TokenInvalidError",
    "TransientError",
    "UnexpectedResponseError",
    "UnreachableError",
    "error_for_category",
    "scrub",
    "strip_query",
]


class Category(enum.Enum):
    """The taxonomy's categories, for renderers and tests."""

    TOKEN_EXPIRED = "token_expired"
    TOKEN_INVALID = "token_invalid"
    REFRESH_TOKEN_INVALID = "refresh_token_invalid"
    BAD_SIGNATURE = "bad_signature"
    BAD_CREDENTIALS = "bad_credentials"
    PERMISSION_DENIED = "permission_denied"
    RATE_LIMITED = "rate_limited"
    BAD_PARAMETERS = "bad_parameters"
    TRANSIENT = "transient"
    UNEXPECTED_RESPONSE = "unexpected_response"
    UNREACHABLE = "unreachable"


def strip_query(url: str) -> str:
    """``url`` without query string or fragment (they carry tokens and signs)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with each non-trivial secret replaced by ``***``."""
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


if TYPE_CHECKING:
    from typing_extensions import NotRequired, TypedDict, Unpack

    class ErrorContext(TypedDict):
        """The keyword arguments every classified error takes."""

        platform: str
        http_status: NotRequired[int | None]
        code: NotRequired[str | None]
        request_id: NotRequired[str | None]
        platform_message: NotRequired[str | None]


class TaxonomyError(PlatformError):
    """Base of the classified platform errors: platform, HTTP status, code, request id."""

    category: Category = Category.UNEXPECTED_RESPONSE

    def __init__(
        self,
        message: str,
        *,
        platform: str,
        http_status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        platform_message: str | None = None,
        next_command: str | None = None,
    ) -> None:
        super().__init__(message, next_command=next_command)
        self.platform = platform
        self.http_status = http_status
        self.code = code
        self.request_id = request_id
        # The platform's own text, already scrubbed by the caller; for display only,
        # never for classification.
        self.platform_message = platform_message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(platform={self.platform!r}, http_status={self.http_status!r},"
            f" code={self.code!r}, request_id={self.request_id!r}, message={self.message!r})"
        )


class TokenExpiredError(TaxonomyError):
    """The access token has expired; a refresh should fix it."""

    category = Category.TOKEN_EXPIRED
    next_command = "nfdoctor token refresh"


class TokenInvalidError(TaxonomyError):
    """The access token is unknown, revoked or for another shop; re-authorize."""

    category = Category.TOKEN_INVALID
    next_command = "nfdoctor token status"


class RefreshTokenInvalidError(TaxonomyError):
    """The refresh token is expired, already used or revoked; re-run the seller's OAuth."""

    category = Category.REFRESH_TOKEN_INVALID
    next_command = "nfdoctor token status"


class BadSignatureError(TaxonomyError):
    """The platform rejected the request signature, proof or timestamp."""

    category = Category.BAD_SIGNATURE
    next_command = "nfdoctor config validate"


class BadCredentialsError(TaxonomyError):
    """The partner/app id or key is wrong, or the shop is not linked to the app."""

    category = Category.BAD_CREDENTIALS
    next_command = "nfdoctor config validate"


class PermissionDeniedError(TaxonomyError):
    """The app or token lacks permission for this call (scope, IP allow-list, window)."""

    category = Category.PERMISSION_DENIED


class RateLimitedError(TaxonomyError):
    """The platform throttled the call; ``retry_after_s`` says how long to wait, if known."""

    category = Category.RATE_LIMITED

    def __init__(
        self, message: str, *, retry_after_s: float | None = None, **context: Unpack[ErrorContext]
    ) -> None:
        super().__init__(message, **context)
        self.retry_after_s = retry_after_s


class BadParametersError(TaxonomyError):
    """The platform rejected the request's parameters."""

    category = Category.BAD_PARAMETERS


class TransientError(TaxonomyError):
    """A server-side or connection failure that is worth retrying later."""

    category = Category.TRANSIENT

    def __init__(
        self, message: str, *, phase: str | None = None, **context: Unpack[ErrorContext]
    ) -> None:
        super().__init__(message, **context)
        self.phase = phase


class BodyProblem(enum.Enum):
    """Why a response body could not be read as the platform's JSON object."""

    HTML = "html"  # an HTML page (a CDN or proxy error page)
    MALFORMED = "malformed"  # not JSON, or JSON cut short
    NOT_OBJECT = "not_object"  # JSON, but not an object


class UnexpectedResponseError(TaxonomyError):
    """The response is not what the platform documents (HTML, bad JSON, missing field).

    ``problem`` says what was wrong with the body; ``field`` names a missing or malformed
    field (schema drift). Code branches on these, never on the message.
    """

    category = Category.UNEXPECTED_RESPONSE

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        problem: BodyProblem | None = None,
        **context: Unpack[ErrorContext],
    ) -> None:
        super().__init__(message, **context)
        self.field = field
        self.problem = problem


class UnreachableError(TaxonomyError):
    """The platform could not be reached; ``phase`` is dns, connect, tls or a timeout."""

    category = Category.UNREACHABLE

    def __init__(self, message: str, *, platform: str, phase: str) -> None:
        super().__init__(message, platform=platform)
        self.phase = phase


_BY_CATEGORY: dict[Category, type[TaxonomyError]] = {
    Category.TOKEN_EXPIRED: TokenExpiredError,
    Category.TOKEN_INVALID: TokenInvalidError,
    Category.REFRESH_TOKEN_INVALID: RefreshTokenInvalidError,
    Category.BAD_SIGNATURE: BadSignatureError,
    Category.BAD_CREDENTIALS: BadCredentialsError,
    Category.PERMISSION_DENIED: PermissionDeniedError,
    Category.RATE_LIMITED: RateLimitedError,
    Category.BAD_PARAMETERS: BadParametersError,
    Category.TRANSIENT: TransientError,
    Category.UNEXPECTED_RESPONSE: UnexpectedResponseError,
}


def error_for_category(
    category: Category,
    message: str,
    *,
    platform: str,
    http_status: int | None = None,
    code: str | None = None,
    request_id: str | None = None,
    platform_message: str | None = None,
) -> TaxonomyError:
    """Build the error class for ``category`` (UNREACHABLE is not built from a response)."""
    cls = _BY_CATEGORY.get(category, UnexpectedResponseError)
    return cls(
        message,
        platform=platform,
        http_status=http_status,
        code=code,
        request_id=request_id,
        platform_message=platform_message,
    )
