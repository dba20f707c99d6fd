"""The building blocks of config sections: base model, spans, ids, URLs, percentages.

A low module on purpose: the config (``nfdoctor.config.model``) assembles the file's model
from these, and each platform module (``nfdoctor.platforms.<name>``) declares its own
section with them, without either importing the other's layer.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import AnyHttpUrl, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

from nfdoctor.durations import bounded_span, parse_span

__all__ = [
    "DigitsId",
    "ErrorCategoryName",
    "Number",
    "Percent",
    "PositiveId",
    "PositiveSpan",
    "Section",
    "SellerId",
    "Span",
    "Url",
    "unique_accounts",
]


def _span(value: Any) -> Any:
    """Accept ``"7d"``-style spans, and bare numbers as seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a time span such as 30s or 7d, got a boolean")
    if isinstance(value, (int, float)):
        return bounded_span(float(value), value)
    if isinstance(value, str):
        return parse_span(value)
    return value


def _not_bool(value: Any) -> Any:
    """YAML reads ``yes``/``no``/``on`` as booleans, and a boolean is an int to Python."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got the boolean {str(value).lower()}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value}")
    return value


#: a shop or partner id that is a number: positive, never a boolean
PositiveId = Annotated[int, BeforeValidator(_not_bool), Field(gt=0)]
Number = Annotated[float, BeforeValidator(_not_bool)]

_TEXT_ID = re.compile(r"^[A-Za-z0-9_.-]+$")
_DIGITS_ID = re.compile(r"^[0-9]+$")


def _text_id(pattern: re.Pattern[str], what: str) -> Any:
    def check(value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"expected {what}, got the boolean {str(value).lower()}")
        if isinstance(value, int) and value > 0:
            value = str(value)  # an unquoted numeric id is what the operator meant
        if isinstance(value, str) and not pattern.match(value.strip()):
            raise ValueError(f"expected {what}, got {value!r}")
        return value

    return BeforeValidator(check)


#: Lazada seller ids: letters, digits, ``_ . -``, no spaces or slashes
SellerId = Annotated[str, _text_id(_TEXT_ID, "an id of letters and digits")]
#: TikTok shop ids, Facebook page ids, Zalo OA ids: all digits
DigitsId = Annotated[str, _text_id(_DIGITS_ID, "an id of digits only")]


def unique_accounts(items: list[Any], key: str) -> list[Any]:
    """Refuse an account listed twice: its results and tokens would be reported twice."""
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        value = str(getattr(item, key))
        if value in seen:
            raise ValueError(
                f"{key} {value} is listed twice (items {seen[value]} and {index}); list each once"
            )
        seen[value] = index
    return items


Span = Annotated[
    timedelta,
    BeforeValidator(_span),
    PlainSerializer(lambda v: f"{v.total_seconds():g}s", return_type=str),
]
PositiveSpan = Annotated[Span, Field(gt=timedelta(0))]
Url = Annotated[AnyHttpUrl, PlainSerializer(str, return_type=str)]
Percent = Annotated[float, BeforeValidator(_not_bool), Field(ge=0, le=100, allow_inf_nan=False)]

#: taxonomy categories a configurable ambiguous error code may be mapped to
ErrorCategoryName = Literal[
    "token_expired", "token_invalid", "bad_signature", "bad_credentials", "bad_parameters"
]


class Section(BaseModel):
    """Base of every config section: unknown keys are kept so they can be warned about."""

    model_config = ConfigDict(extra="allow", frozen=True, str_strip_whitespace=True)
