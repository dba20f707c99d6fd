"""``config init | validate | show``: the template, the validation, the effective view."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from nfdoctor.config.loader import LoadedConfig, default_config_path, load
from nfdoctor.context import Environment
from nfdoctor.errors import ConfigProblem, StateError, UsageError, WriteTargetError
from nfdoctor.fsutil import check_write_target, write_atomically
from nfdoctor.platforms.registry import configured
from nfdoctor.services.checkrun import prepare
from nfdoctor.services.observer import RunObserver, SilentObserver

__all__ = [
    "ConfigShown",
    "ConfigValidated",
    "effective_config_text",
    "show_config",
    "summarise",
    "template_text",
    "validate_config",
    "write_template",
]


@dataclass(frozen=True, kw_only=True)
class ConfigValidated:
    """What ``config validate`` found: the file, what it holds, how many secrets resolved."""

    path: Path
    summary: str
    secrets_resolved: int
    warnings: tuple[ConfigProblem, ...]


@dataclass(frozen=True, kw_only=True)
class ConfigShown:
    """The effective config as text, and the warnings found loading it."""

    text: str
    warnings: tuple[ConfigProblem, ...]


def validate_config(
    env: Environment, config_path: Path | None, *, observer: RunObserver | None = None
) -> ConfigValidated:
    """Load and validate the config and resolve every secret it references."""
    prepared = prepare(env, config_path, observer or SilentObserver())
    loaded = prepared.loaded
    return ConfigValidated(
        path=loaded.path,
        summary=summarise(loaded),
        secrets_resolved=len(prepared.secrets),
        warnings=loaded.warnings,
    )


def show_config(
    env: Environment,
    config_path: Path | None,
    *,
    as_json: bool,
    observer: RunObserver | None = None,
) -> ConfigShown:
    """The effective config (defaults filled in), every secret shown as its reference."""
    loaded = load(explicit=config_path, environ=env.environ, cwd=env.cwd)
    (observer or SilentObserver()).config_warnings(loaded.warnings)
    return ConfigShown(
        text=effective_config_text(loaded, as_json=as_json), warnings=loaded.warnings
    )


def template_text() -> str:
    """The commented config template shipped with nfdoctor."""
    return resources.files("nfdoctor.config").joinpath("template.yaml").read_text("utf-8")


def write_template(path: Path | None, *, environ: Mapping[str, str], force: bool) -> Path:
    """Write the template (0600, atomically); refuse to overwrite unless ``force``, and refuse
    anything that is not a regular file even then."""
    target = path or default_config_path(environ)
    try:
        check_write_target(target)
    except WriteTargetError as exc:
        if path is not None:
            raise UsageError(f"--path: {exc.reason}") from None
        if target.parent.exists():
            raise UsageError(exc.message) from None
        # The default location's directory is made on first use.
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as mkdir_exc:
            raise StateError(f"cannot create {target.parent}: {mkdir_exc.strerror}") from None
    if target.exists() and not force:
        raise UsageError(f"{target} already exists; use --force to overwrite it")
    # 0600: operators do paste inline secrets into config files, whatever the template says.
    write_atomically(target, template_text(), mode=0o600)
    return target


def summarise(loaded: LoadedConfig) -> str:
    """``3 platforms, 5 shops/pages/OAs``."""
    sections = configured(loaded.config.platforms)
    subjects = sum(len(platform.accounts(section)) for platform, section in sections)
    return f"{len(sections)} platform(s), {subjects} shop(s)/page(s)/OA(s)"


def effective_config_text(loaded: LoadedConfig, *, as_json: bool) -> str:
    """The validated config with defaults, secrets shown as references or masked."""
    data = loaded.config.model_dump(mode="json", exclude_none=False)
    if as_json:
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    header = f"# effective config from {loaded.path} (secrets masked)\n"
    return header + yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
