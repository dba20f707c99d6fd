"""What YAML nfdoctor refuses before building anything from it: too deep, or not text.

PyYAML builds nodes recursively, so a file nested a few hundred levels deep (``[[[[…``)
exhausts Python's recursion limit, and a control byte stops its reader with a message spread
over two lines. Its event parser is iterative, so one pass over the events finds both
without recursion, each with a line and column. Used by the config loader and the
simulator's fault plans.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

__all__ = ["MAX_YAML_DEPTH", "YamlShapeError", "check_yaml"]

#: a real config is 5 levels deep; nothing nfdoctor reads needs more than this
MAX_YAML_DEPTH = 64


@dataclass
class YamlShapeError(Exception):
    """The text cannot be loaded safely; ``line`` and ``column`` are 1-based."""

    message: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        return self.message


def _line_col(text: str, position: int) -> tuple[int, int]:
    before = text[:position]
    return before.count("\n") + 1, position - (before.rfind("\n") + 1) + 1


def check_yaml(text: str, *, max_depth: int = MAX_YAML_DEPTH) -> None:
    """Raise YamlShapeError when ``text`` nests deeper than ``max_depth`` or holds characters
    YAML does not allow; syntax errors are left for the real parse to report."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > max_depth:
                    mark = event.start_mark
                    raise YamlShapeError(
                        f"nested more than {max_depth} levels deep; refusing to load it",
                        mark.line + 1 if mark else None,
                        mark.column + 1 if mark else None,
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.reader.ReaderError as exc:
        line, column = _line_col(text, exc.position)
        code = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1])
        raise YamlShapeError(
            f"control character U+{code:04X} is not allowed in YAML (remove it, or write it "
            "escaped inside double quotes)",
            line,
            column,
        ) from None
    except yaml.YAMLError:
        return  # a syntax error: the parse that follows reports it with its location
