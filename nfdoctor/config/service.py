"""Config services behind ``nfdoctor config``: template, summary, effective view."""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from nfdoctor.config.loader import LoadedConfig, default_config_path
from nfdoctor.errors import StateError, UsageError, WriteTargetError


def template_text() -> str:
    """The commented config template shipped with nfdoctor."""
    return resources.files("nfdoctor.config").joinpath("template.yaml").read_text("utf-8")


def write_template(path: Path | None, *, environ: Mapping[str, str], force: bool) -> Path:
    """Write the template (0600, atomically); refuse to overwrite unless ``force``, and refuse
    anything that is not a regular file even then."""
    from nfdoctor.fsutil import check_write_target, write_atomically

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
    platforms = loaded.config.platforms
    names = [n for n in ("shopee", "lazada", "tiktok", "facebook", "zalo") if getattr(platforms, n)]
    subjects = 0
    for name in names:
        section = getattr(platforms, name)
        for field in ("shops", "pages", "oas"):
            subjects += len(getattr(section, field, []) or [])
    return f"{len(names)} platform(s), {subjects} shop(s)/page(s)/OA(s)"


def effective_config_text(loaded: LoadedConfig, *, as_json: bool) -> str:
    """The validated config with defaults, secrets shown as references or masked."""
    data = loaded.config.model_dump(mode="json", exclude_none=False)
    if as_json:
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    import yaml

    header = f"# effective config from {loaded.path} (secrets masked)\n"
    return header + yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
