"""Config loader: discovery, located errors, warnings, secrets, template."""

from __future__ import annotations

from pathlib import Path

import pytest

from nfdoctor.config.loader import candidate_paths, discover, format_key_path, load_config
from nfdoctor.errors import ConfigError, ConfigNotFoundError
from nfdoctor.services.config import template_text


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_key_path_format() -> None:
    assert format_key_path(("platforms", "shopee", "shops", 1, "shop_id")) == (
        "platforms.shopee.shops[1].shop_id"
    )


def test_wrong_type_is_located_by_file_line_column_and_key(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """platforms:
  shopee:
    partner_id: 1
    partner_key: env:K
    shops:
      - shop_id: 1
      - shop_id: abc
""",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (problem,) = caught.value.problems
    assert problem.key_path == "platforms.shopee.shops[1].shop_id"
    assert (problem.line, problem.column) == (7, 9)
    assert problem.message == "expected an integer, got 'abc'"
    assert caught.value.message == (
        f"{path}:7:9: platforms.shopee.shops[1].shop_id: expected an integer, got 'abc'"
    )


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """database:
  timeout: forever
thresholds:
  disk_free_warning: 150
timezone: Mars/Olympus
""",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    keys = sorted(p.key_path for p in caught.value.problems)
    assert keys == ["database.timeout", "database.url", "thresholds.disk_free_warning", "timezone"]
    assert all(p.line is not None for p in caught.value.problems)


def test_unknown_platform_is_an_error_with_suggestion(tmp_path: Path) -> None:
    path = _write(tmp_path, "platforms:\n  shoppe:\n    partner_id: 1\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (problem,) = caught.value.problems
    assert problem.key_path == "platforms.shoppe"
    assert "unknown platform 'shoppe' (did you mean 'shopee'?)" in problem.message
    assert problem.line == 2


def test_unknown_key_warns_with_did_you_mean(tmp_path: Path) -> None:
    path = _write(tmp_path, "thresholds:\n  api_latancy: 2s\n")
    loaded = load_config(path)
    (warning,) = loaded.warnings
    assert warning.key_path == "thresholds.api_latancy"
    assert "did you mean 'api_latency'?" in warning.message
    assert (warning.line, warning.column) == (2, 3)


def test_inline_secret_warns_and_env_reference_does_not(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """crm:
  api_key: hunter2-inline-value
ai:
  api_key: env:AI_KEY
""",
    )
    loaded = load_config(path)
    messages = [w.located() for w in loaded.warnings]
    assert len(messages) == 1
    assert "crm.api_key: inline secret" in messages[0]
    assert "hunter2" not in messages[0]
    assert [s.key_path for s in loaded.secrets] == ["crm.api_key", "ai.api_key"]


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "timezone: UTC\ntimezone: Asia/Ho_Chi_Minh\n")
    with pytest.raises(ConfigError, match=r":2:1: timezone: duplicate key"):
        load_config(path)


def test_malformed_yaml_is_located(tmp_path: Path) -> None:
    path = _write(tmp_path, "crm:\n  base_url: [unclosed\nai: {}\n")
    with pytest.raises(ConfigError, match=r"c.yaml:3:\d+: invalid YAML"):
        load_config(path)


def test_spans_and_defaults(tmp_path: Path) -> None:
    path = _write(tmp_path, "thresholds:\n  api_latency: 1500ms\n  token_expiry_warning: 10d\n")
    config = load_config(path).config
    assert config.thresholds.api_latency.total_seconds() == 1.5
    assert config.thresholds.token_expiry_warning.days == 10
    assert config.thresholds.disk_free_critical == 5.0
    assert config.timezone == "Asia/Ho_Chi_Minh"


def test_warning_threshold_must_be_beyond_critical(tmp_path: Path) -> None:
    path = _write(tmp_path, "thresholds:\n  disk_free_warning: 3\n  disk_free_critical: 5\n")
    with pytest.raises(ConfigError, match="disk_free_warning must be greater"):
        load_config(path)


def test_discovery_order(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path)}
    paths = [p for p, _ in candidate_paths(explicit=None, environ=env, cwd=tmp_path)]
    assert paths == [
        tmp_path / "nfdoctor.yaml",
        tmp_path / "xdg" / "nfdoctor" / "config.yaml",
        Path("/etc/nfdoctor/config.yaml"),
    ]
    xdg_file = tmp_path / "xdg" / "nfdoctor" / "config.yaml"
    xdg_file.parent.mkdir(parents=True)
    xdg_file.write_text("{}")
    assert discover(explicit=None, environ=env, cwd=tmp_path) == xdg_file
    (tmp_path / "nfdoctor.yaml").write_text("{}")
    assert discover(explicit=None, environ=env, cwd=tmp_path) == tmp_path / "nfdoctor.yaml"
    env_file = tmp_path / "from-env.yaml"
    env_file.write_text("{}")
    assert (
        discover(explicit=None, environ={**env, "NFDOCTOR_CONFIG": str(env_file)}, cwd=tmp_path)
        == env_file
    )
    with pytest.raises(ConfigNotFoundError, match="does not exist"):
        discover(explicit=tmp_path / "nope.yaml", environ=env, cwd=tmp_path)


def test_template_is_valid_and_has_no_inline_secrets(tmp_path: Path) -> None:
    path = _write(tmp_path, template_text())
    loaded = load_config(path)
    assert loaded.warnings == ()
    assert {s.ref.kind for s in loaded.secrets} == {"env"}
    platforms = loaded.config.platforms
    assert all(getattr(platforms, n) for n in ("shopee", "lazada", "tiktok", "facebook", "zalo"))


def test_empty_sections_warn(tmp_path: Path) -> None:
    path = _write(tmp_path, "database:\nplatforms:\n  shopee:\n")
    loaded = load_config(path)
    assert [(w.key_path, w.line, w.message) for w in loaded.warnings] == [
        ("database", 1, "empty section; it is ignored"),
        ("platforms.shopee", 3, "empty section; it is ignored"),
    ]


def test_bound_messages_are_plain_words(tmp_path: Path) -> None:
    path = _write(tmp_path, "thresholds:\n  disk_free_warning: .nan\n  check_timeout: 0s\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    messages = sorted(p.message for p in caught.value.problems)
    assert messages == ["expected a finite number, got nan", "must be more than zero, got '0s'"]
