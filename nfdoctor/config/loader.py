"""The config loader: the only place that reads YAML.

It finds the file (design.md's discovery order), parses it keeping each node's line and
column, validates it against :mod:`nfdoctor.config.model`, and reports every problem at
once, each located by file, line, column and key path.
"""

from __future__ import annotations

import difflib
import os
import stat
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from nfdoctor.config.model import NfdoctorConfig
from nfdoctor.config.yamlcheck import YamlShapeError, check_yaml
from nfdoctor.durations import format_span
from nfdoctor.errors import ConfigError, ConfigNotFoundError, ConfigProblem
from nfdoctor.fsutil import (
    FileRefusedError,
    describe_kind,
    os_reason,
    read_regular_file,
)
from nfdoctor.platforms.registry import names
from nfdoctor.secrets.redaction import Redactor
from nfdoctor.secrets.reference import REFERENCE_FORMS, SecretRef
from nfdoctor.secrets.resolver import ResolvedSecrets, SecretResolver
from nfdoctor.store.database import DatabaseUrl, parse_database_url

KeyPath = tuple[str | int, ...]
# Config files are small; a huge one is a mistake (a log or a dump given by accident).
MAX_CONFIG_BYTES = 1024 * 1024
# A real config has a few hundred nodes. YAML aliases can make 1 KB expand to 10**9 nodes
# ("billion laughs"); past this many the file is refused instead of expanded.
MAX_CONFIG_NODES = 100_000


@dataclass(frozen=True, kw_only=True)
class Location:
    """Where a node starts in the file (1-based)."""

    line: int
    column: int


@dataclass(frozen=True, kw_only=True)
class LocatedSecret:
    """A secret reference with the key path and place it was written at."""

    key_path: str
    ref: SecretRef
    where: str  # "file:line:col: key.path"


@dataclass(frozen=True, kw_only=True)
class LoadedConfig:
    """A validated config, where it came from, and the warnings found loading it."""

    path: Path
    config: NfdoctorConfig
    raw: dict[str, Any]
    warnings: tuple[ConfigProblem, ...] = ()
    secrets: tuple[LocatedSecret, ...] = ()
    locations: Mapping[KeyPath, Location] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        """Directory that relative paths in the config are resolved against (absolute)."""
        return self.path.absolute().parent

    def error_at(self, path: KeyPath, message: str) -> ConfigError:
        """A ConfigError about the value at ``path``, located at its line in the file: for
        what only using a value shows (a CA bundle that is not PEM)."""
        return ConfigError(_problem(str(self.path), path, message, self.locations))


def format_key_path(path: KeyPath) -> str:
    """``('platforms', 'shops', 1, 'shop_id')`` → ``platforms.shops[1].shop_id``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def candidate_paths(
    *, explicit: Path | None, environ: Mapping[str, str], cwd: Path
) -> list[tuple[Path, str]]:
    """Where to look, in design.md's order, each with the reason it is looked at."""
    if explicit is not None:
        return [(explicit, "--config")]
    if environ.get("NFDOCTOR_CONFIG"):
        return [(Path(environ["NFDOCTOR_CONFIG"]), "$NFDOCTOR_CONFIG")]
    xdg = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME", "~")) / ".config")
    return [
        (cwd / "nfdoctor.yaml", "./nfdoctor.yaml"),
        (Path(xdg).expanduser() / "nfdoctor" / "config.yaml", "$XDG_CONFIG_HOME"),
        (Path("/etc/nfdoctor/config.yaml"), "/etc/nfdoctor"),
    ]


def discover(*, explicit: Path | None, environ: Mapping[str, str], cwd: Path) -> Path:
    """The config file to use; an explicit or ``$NFDOCTOR_CONFIG`` path must exist."""
    candidates = candidate_paths(explicit=explicit, environ=environ, cwd=cwd)
    named = explicit is not None or bool(environ.get("NFDOCTOR_CONFIG"))
    for path, reason in candidates:
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        except OSError as exc:
            if not named:
                continue  # a discovery place that cannot even be looked at holds no config
            raise ConfigNotFoundError(
                ConfigProblem(
                    file=str(path),
                    key_path="",
                    message=f"cannot use the config file: {os_reason(exc)} ({reason})",
                )
            ) from None
        if stat.S_ISREG(info.st_mode):
            return path
        if named:
            kind = describe_kind(info.st_mode)
            raise ConfigNotFoundError(
                ConfigProblem(
                    file=str(path),
                    key_path="",
                    message=f"config file is {kind}, not a regular file ({reason})",
                )
            )
    if named:
        path, reason = candidates[0]
        raise ConfigNotFoundError(
            ConfigProblem(
                file=str(path), key_path="", message=f"config file does not exist ({reason})"
            )
        )
    looked = ", ".join(str(p) for p, _ in candidates)
    raise ConfigNotFoundError(
        ConfigProblem(
            file="",
            key_path="",
            message=f"no config file found (looked in {looked})",
        )
    )


def load_config(path: Path) -> LoadedConfig:
    """Read, parse and validate ``path``; raise ConfigError listing every problem."""
    text = _read_text(path)
    raw, locations = parse_yaml(text, str(path))
    return validate(raw, locations, path)


def _read_text(path: Path) -> str:
    def problem(message: str) -> ConfigError:
        return ConfigError(ConfigProblem(file=str(path), key_path="", message=message))

    try:
        data = read_regular_file(path, limit=MAX_CONFIG_BYTES)
    except FileRefusedError as exc:
        if exc.too_large:
            raise problem(f"file {exc.reason}; not a config file?") from None
        raise problem(f"the config file {exc.reason}") from None
    except FileNotFoundError:
        raise ConfigNotFoundError(
            ConfigProblem(file=str(path), key_path="", message="config file does not exist")
        ) from None
    except PermissionError:
        raise problem("cannot read the config file (permission denied)") from None
    except OSError as exc:
        raise problem(f"cannot read the config file: {exc.strerror}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise problem(f"not UTF-8 text (byte {exc.start}); save the file as UTF-8") from None


def parse_yaml(text: str, file: str) -> tuple[Any, dict[KeyPath, Location]]:
    """Parse YAML into plain data plus the location of every key and item."""
    try:
        check_yaml(text)
    except YamlShapeError as exc:
        raise ConfigError(
            ConfigProblem(
                file=file, key_path="", message=exc.message, line=exc.line, column=exc.column
            )
        ) from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return {}, {}
        locations: dict[KeyPath, Location] = {}
        problems: list[ConfigProblem] = []
        data = _construct(loader, node, (), locations, problems, file)
    except _TooManyNodes as exc:
        raise ConfigError(
            ConfigProblem(
                file=file,
                key_path=format_key_path(exc.path),
                message=f"expands to more than {MAX_CONFIG_NODES} values (YAML aliases?); "
                "refusing to load it",
                line=exc.line,
                column=exc.column,
            )
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(
            ConfigProblem(
                file=file,
                key_path="",
                message=f"invalid YAML: {what}",
                line=mark.line + 1 if mark else None,
                column=mark.column + 1 if mark else None,
            )
        ) from None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            ConfigProblem(file=file, key_path="", message=f"invalid YAML: {first}")
        ) from None
    finally:
        loader.dispose()
    if problems:
        raise ConfigError(problems)
    if not isinstance(data, dict):
        raise ConfigError(
            ConfigProblem(
                file=file,
                key_path="",
                message=f"the top level must be a mapping of sections, got {_type_name(data)}",
                line=node.start_mark.line + 1,
                column=node.start_mark.column + 1,
            )
        )
    return data, locations


class _TooManyNodes(Exception):
    def __init__(self, path: KeyPath, line: int, column: int) -> None:
        self.path, self.line, self.column = path, line, column


def _construct(
    loader: Any,
    node: Any,
    path: KeyPath,
    locations: dict[KeyPath, Location],
    problems: list[ConfigProblem],
    file: str,
) -> Any:
    locations[path] = Location(line=node.start_mark.line + 1, column=node.start_mark.column + 1)
    if len(locations) > MAX_CONFIG_NODES:
        raise _TooManyNodes(path, node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves YAML merge keys (<<)
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            # Keys are names: take the text as written, so YAML 1.1 does not turn `on:`
            # or `no:` into booleans.
            if isinstance(key_node, yaml.ScalarNode):
                key = key_node.value
            else:
                key = str(loader.construct_object(key_node, deep=True))
            if key in result:
                # YAML keeps the last silently; an operator editing at 3 a.m. deserves to know.
                problems.append(
                    ConfigProblem(
                        file=file,
                        key_path=format_key_path((*path, key)),
                        message="duplicate key (the earlier value would be ignored)",
                        line=key_node.start_mark.line + 1,
                        column=key_node.start_mark.column + 1,
                    )
                )
            result[key] = _construct(loader, value_node, (*path, key), locations, problems, file)
            # A key's own position is more useful than its value's for "missing/unknown" errors.
            key_path = (*path, key)
            locations[key_path] = Location(
                line=key_node.start_mark.line + 1, column=key_node.start_mark.column + 1
            )
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _construct(loader, item, (*path, index), locations, problems, file)
            for index, item in enumerate(node.value)
        ]
    return loader.construct_object(node, deep=True)


def _type_name(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return "binary data"
    if isinstance(value, datetime):
        return "a date and time"
    if isinstance(value, date):
        return "a date"
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "a boolean",
        list: "a list",
        dict: "a mapping",
        type(None): "nothing (null)",
    }
    return names.get(type(value), type(value).__name__)


def _locate(path: KeyPath, locations: Mapping[KeyPath, Location]) -> Location | None:
    """The location of ``path``, or of its nearest ancestor written in the file."""
    for end in range(len(path), -1, -1):
        if path[:end] in locations:
            return locations[path[:end]]
    return None


def _problem(
    file: str, path: KeyPath, message: str, locations: Mapping[KeyPath, Location]
) -> ConfigProblem:
    location = _locate(path, locations)
    return ConfigProblem(
        file=file,
        key_path=format_key_path(path),
        message=message,
        line=location.line if location else None,
        column=location.column if location else None,
    )


def validate(
    raw: dict[str, Any], locations: Mapping[KeyPath, Location], path: Path
) -> LoadedConfig:
    """Validate parsed data; every error at once, unknown keys as warnings."""
    file = str(path)
    try:
        config = NfdoctorConfig.model_validate(raw)
    except ValidationError as exc:
        problems = [
            _problem(file, tuple(error["loc"]), _message(error, raw), locations)
            for error in exc.errors(include_url=False)
        ]
        raise ConfigError(problems) from None
    warnings = [
        _problem(file, key_path, message, locations)
        for key_path, message in _unknown_keys(config, ())
    ]
    # `shopee:` with nothing under it reads as configured but is not; say so.
    empty: list[KeyPath] = [(name,) for name, value in raw.items() if value is None]
    platforms = raw.get("platforms")
    if isinstance(platforms, dict):
        empty += [("platforms", name) for name, value in platforms.items() if value is None]
    for key_path in empty:
        warnings.append(_problem(file, key_path, "empty section; it is ignored", locations))
    secrets = []
    for key_path, ref in _secret_refs(config, ()):
        located = _problem(file, key_path, "", locations)
        where = located.located().removesuffix(": ")
        secrets.append(LocatedSecret(key_path=format_key_path(key_path), ref=ref, where=where))
        if ref.is_inline:
            warnings.append(
                _problem(
                    file,
                    key_path,
                    "inline secret; keep it out of the file with env:VAR, file:PATH "
                    "or keyring:SERVICE/NAME",
                    locations,
                )
            )
    return LoadedConfig(
        path=path,
        config=config,
        raw=raw,
        warnings=tuple(warnings),
        secrets=tuple(secrets),
        locations=dict(locations),
    )


def _message(error: Mapping[str, Any], raw: Any) -> str:
    """A short operator-facing message for one pydantic error."""
    kind = error["type"]
    loc = tuple(error["loc"])
    got = error.get("input")
    if kind == "missing":
        return "required key is missing"
    if kind != "value_error" and _is_secret_field(loc):
        # Whatever YAML made of it (a number, a date, binary), the value is a secret: it is
        # named by its type only. (SecretRef.parse's own errors quote only reference syntax.)
        if kind == "string_type":
            return (
                f"expected a secret reference ({REFERENCE_FORMS}) or a quoted string, got "
                f"{_type_name(got)}; the value is not shown"
            )
        return f"{error['msg'].split(',')[0]} (the value is not shown)"
    if kind == "extra_forbidden" and loc[:1] == ("platforms",):
        known = names()
        return f"unknown platform {loc[-1]!r}{_did_you_mean(str(loc[-1]), known)}" + (
            f"; known platforms: {', '.join(known)}"
        )
    expected = {
        "int_parsing": "expected an integer",
        "int_type": "expected an integer",
        "int_from_float": "expected a whole number",
        "float_parsing": "expected a number",
        "float_type": "expected a number",
        "bool_parsing": "expected true or false",
        "bool_type": "expected true or false",
        "string_type": "expected a string",
        "list_type": "expected a list",
        "dict_type": "expected a mapping of keys",
        "model_type": "expected a mapping of keys",
        "model_attributes_type": "expected a mapping of keys",
        "url_parsing": "expected an http(s) URL",
        "url_scheme": "expected an http(s) URL",
        "literal_error": f"expected one of {error.get('ctx', {}).get('expected', '')}",
    }.get(kind)
    if expected:
        return f"{expected}, got {_show(got)}"
    bounds = {
        "greater_than": "more than",
        "greater_than_equal": "at least",
        "less_than": "less than",
        "less_than_equal": "at most",
    }
    if kind in bounds:
        limit = next(iter(error.get("ctx", {}).values()), None)
        # pydantic gives a timedelta bound as its repr string
        is_zero = limit in (0, timedelta(0)) or limit == "datetime.timedelta(0)"
        shown = "zero" if is_zero else _show(limit)
        return f"must be {bounds[kind]} {shown}, got {_show(got)}"
    if kind == "finite_number":
        return f"expected a finite number, got {_show(got)}"
    if kind == "value_error":
        return str(error.get("ctx", {}).get("error", error["msg"]))
    message: str = error["msg"]
    return f"{message[0].lower()}{message[1:]}"


def _is_secret_field(loc: tuple[Any, ...]) -> bool:
    """Whether the config key at ``loc`` (a pydantic error location) is a secret reference."""
    annotation: Any = NfdoctorConfig
    for part in loc:
        if isinstance(part, int):
            annotation = next(iter(_list_items(annotation)), None)
            continue
        models = [
            a
            for a in _union_members(annotation)
            if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        model = models[0] if models else None
        if model is None or part not in model.model_fields:
            return False
        annotation = model.model_fields[part].annotation
    return any(a is SecretRef for a in _union_members(annotation))


def _union_members(annotation: Any) -> list[Any]:
    """The types an annotation allows: ``X | None`` → [X, None]; ``Annotated[X, …]`` → [X]."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _union_members(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [member for arg in get_args(annotation) for member in _union_members(arg)]
    return [annotation]


def _list_items(annotation: Any) -> list[Any]:
    """The item types of every ``list[...]`` an annotation allows."""
    return [
        get_args(member)[0]
        for member in _union_members(annotation)
        if get_origin(member) is list and get_args(member)
    ]


def _show(value: Any) -> str:
    if isinstance(value, (dict, list)) or value is None:
        return _type_name(value)
    if isinstance(value, (bytes, bytearray)):
        return "binary data"
    if isinstance(value, (date, datetime)):
        return f"the date {value.isoformat()}"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, timedelta):
        return format_span(value.total_seconds())
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _unknown_keys(model: Any, path: KeyPath) -> Iterator[tuple[KeyPath, str]]:
    """Walk a validated model; yield each key the model does not know."""
    if isinstance(model, BaseModel):
        known = list(type(model).model_fields)
        for key in model.model_extra or {}:
            yield (*path, key), f"unknown key{_did_you_mean(key, known)}; it is ignored"
        for name in type(model).model_fields:
            yield from _unknown_keys(getattr(model, name), (*path, name))
    elif isinstance(model, list):
        for index, item in enumerate(model):
            yield from _unknown_keys(item, (*path, index))


def _secret_refs(model: Any, path: KeyPath) -> Iterator[tuple[KeyPath, SecretRef]]:
    """Walk a validated model; yield every secret reference with its key path."""
    if isinstance(model, SecretRef):
        yield path, model
    elif isinstance(model, BaseModel):
        for name in type(model).model_fields:
            yield from _secret_refs(getattr(model, name), (*path, name))
    elif isinstance(model, list):
        for index, item in enumerate(model):
            yield from _secret_refs(item, (*path, index))


def default_config_path(environ: Mapping[str, str]) -> Path:
    """Where ``config init`` writes when not told: the per-user XDG config file."""
    xdg = environ.get("XDG_CONFIG_HOME") or os.path.join(environ.get("HOME", "~"), ".config")
    return Path(xdg).expanduser() / "nfdoctor" / "config.yaml"


def load(*, explicit: Path | None, environ: Mapping[str, str], cwd: Path) -> LoadedConfig:
    """Find the config (design.md's order), read, parse and validate it."""
    return load_config(discover(explicit=explicit, environ=environ, cwd=cwd))


def resolve_secrets(
    loaded: LoadedConfig, *, redactor: Redactor, environ: Mapping[str, str]
) -> ResolvedSecrets:
    """Resolve every secret the config references, each value registered for masking.

    Fails on the first that cannot be resolved, with one line saying which key and where, so
    a missing secret stops a command before anything is measured or written.
    """
    resolver = SecretResolver(redactor=redactor, environ=environ, base_dir=loaded.base_dir)
    values = {
        secret.key_path: resolver.resolve(secret.ref, where=secret.where)
        for secret in loaded.secrets
    }
    return ResolvedSecrets(values, source=str(loaded.path))


def database_url(loaded: LoadedConfig, secrets: ResolvedSecrets) -> DatabaseUrl | None:
    """The configured CRM database (``database.url``, its password attached), or None."""
    section = loaded.config.database
    if section is None:
        return None
    url = parse_database_url(section.url, base_dir=loaded.base_dir)
    if section.password is not None:
        url = url.with_password(secrets.get("database.password"))
    return url
