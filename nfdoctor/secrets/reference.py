"""A secret as written in the config: a reference, never the value itself (unless inline)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic_core import core_schema

SecretKind = Literal["env", "file", "keyring", "inline"]

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
REFERENCE_FORMS = "env:VAR, file:PATH or keyring:SERVICE/NAME"


@dataclass(frozen=True)
class SecretRef:
    """A parsed secret reference; ``repr`` never shows an inline value."""

    kind: SecretKind
    target: str  # variable name, path, "service/name", or the inline value itself

    @classmethod
    def parse(cls, text: str) -> SecretRef:
        """Parse ``env:VAR`` / ``file:PATH`` / ``keyring:SERVICE/NAME``; anything else is inline."""
        scheme, sep, rest = text.partition(":")
        if sep and scheme in ("env", "file", "keyring"):
            rest = rest.strip()
            if scheme == "env" and not _ENV_NAME.match(rest):
                raise ValueError(
                    f"env: needs a variable name (env:SHOPEE_PARTNER_KEY), got {rest!r}"
                )
            if scheme == "file" and not rest:
                raise ValueError("file: needs a path (file:/etc/nfdoctor/shopee.key)")
            if scheme == "keyring":
                service, slash, name = rest.partition("/")
                if not (service and slash and name):
                    raise ValueError(
                        f"keyring: needs SERVICE/NAME (keyring:nfdoctor/shopee), got {rest!r}"
                    )
            return cls(scheme, rest)  # type: ignore[arg-type]
        if not text:
            raise ValueError(f"empty secret; use {REFERENCE_FORMS}")
        return cls("inline", text)

    @property
    def is_inline(self) -> bool:
        """True when the config holds the secret value itself."""
        return self.kind == "inline"

    def display(self) -> str:
        """What may be shown: the reference itself, or a mask for an inline value."""
        return "****** (inline)" if self.is_inline else f"{self.kind}:{self.target}"

    def __repr__(self) -> str:
        return f"SecretRef({self.display()!r})"

    __str__ = display

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        """Validate from a YAML string; numbers and other types are rejected."""
        return core_schema.no_info_after_validator_function(
            cls.parse,
            core_schema.str_schema(strict=True),
            serialization=core_schema.plain_serializer_function_ser_schema(lambda v: v.display()),
        )
