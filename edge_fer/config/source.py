"""Config text to plain data, keeping what an operator needs to fix mistakes: lines.

PyYAML's ``safe_load`` forgets where each value came from and silently keeps the last of two
duplicate keys. Composing the node tree first gives both: every problem is reported with the YAML
line of its key, and duplicates become errors. ``${...}`` substitution happens on the loaded values
(not on the raw text), so a secret containing ``: `` or ``#`` cannot change the YAML structure and
a commented-out ``${VAR}`` is not required.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_fer.config.problems import Loc, Problem, path_text

if TYPE_CHECKING:
    import yaml


def split_loc(text: str) -> tuple[Any, ...]:
    """``cameras[1].name`` -> ``("cameras", 1, "name")``."""
    parts: list[Any] = []
    for piece in text.split("."):
        name, *indexes = piece.split("[")
        if name:
            parts.append(name)
        parts.extend(int(i.rstrip("]")) for i in indexes)
    return tuple(parts)


def set_path(data: Any, loc: Sequence[str | int], value: Any) -> None:
    """Set ``data[loc...] = value`` in nested dicts and lists, creating missing sections as dicts."""
    if not loc:
        raise KeyError("empty key")
    node = data
    for part in loc[:-1]:
        if isinstance(part, int):
            if not isinstance(node, list) or not 0 <= part < len(node):
                raise IndexError(f"no item [{part}] here")
            node = node[part]
        else:
            if not isinstance(node, dict):
                raise TypeError(f"{part!r} is not a section")
            node = node.setdefault(part, {})
    last = loc[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or not 0 <= last < len(node):
            raise IndexError(f"no item [{last}] here")
        node[last] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise TypeError(f"{last!r} is not a key of a section")


def parse_assignment(text: str) -> tuple[str, Any]:
    """``tracking.min_hits=5`` -> ``("tracking.min_hits", 5)``; the value is read as YAML (for ``--set``)."""
    import yaml

    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(
            "expected KEY=VALUE, e.g. tracking.min_hits=5 (what was given is not shown: it may be a secret)"
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


class ConfigError(Exception):
    """One or more problems in a config; ``problems`` holds one line each, with key path and line."""

    def __init__(self, source: str, problems: Sequence[Problem | str]) -> None:
        self.source = source
        self.items = [p if isinstance(p, Problem) else Problem(str(p)) for p in problems]
        self.problems = [str(p) for p in self.items]
        super().__init__(f"{source}: " + "; ".join(self.problems))

    def lines(self) -> list[str]:
        return [f"{self.source}: {p}" for p in self.problems]


@dataclass
class Document:
    """Loaded YAML data plus its node tree, for line lookups."""

    data: Any
    root: yaml.Node | None = None
    problems: list[Problem] = field(default_factory=list)

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """Line (1-based) of the deepest key or item of ``loc`` found in the YAML."""
        import yaml

        node, line = self.root, None
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                match = None
                for key, value in node.value:
                    if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                        match = (key, value)  # the last one wins, as in safe_load
                if match is None:
                    break
                line, node = match[0].start_mark.line + 1, match[1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                break
        return line

    def problem(self, loc: Sequence[str | int], message: str) -> Problem:
        return Problem(message, path_text(loc), self.line_of(loc))


def parse_yaml(text: str, source: str) -> Document:
    """YAML text to a :class:`Document`; syntax errors raise :class:`ConfigError` with line and column."""
    import yaml

    from edge_fer.config.shape import depth_problem, shape_problems

    try:
        too_deep = depth_problem(text)  # before the composer, which recurses once per level
        if too_deep is not None:
            raise ConfigError(source, [too_deep])
        loader = yaml.SafeLoader(text)
        try:
            root = loader.get_single_node()
            duplicates = _duplicate_keys(root)  # before construction, which flattens merge keys (<<) into the nodes
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        line, column = _error_position(exc, text)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context = getattr(exc, "context", None)
        detail = f"{context}, {problem}" if context else problem
        raise ConfigError(
            source,
            [Problem(f"invalid YAML: {detail} (check indentation, colons and quotes)", line=line, column=column)],
        ) from None
    doc = Document(data=data, root=root)
    problems, fatal = shape_problems(data, doc.line_of)
    if fatal:
        raise ConfigError(source, problems)
    doc.problems.extend(problems)
    doc.problems.extend(duplicates)
    return doc


def _error_position(exc: Exception, text: str) -> tuple[int | None, int | None]:
    """Line and column (1-based) of a YAML error; the reader's errors (NUL, control characters) carry only
    an offset into the text."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is not None:
        return mark.line + 1, mark.column + 1
    position = getattr(exc, "position", None)
    if isinstance(position, int) and 0 <= position <= len(text):
        return text.count("\n", 0, position) + 1, position - (text.rfind("\n", 0, position) + 1) + 1
    return None, None


def _duplicate_keys(root: yaml.Node | None) -> list[Problem]:
    import yaml

    problems: list[Problem] = []
    seen_nodes: set[int] = set()

    def walk(node: yaml.Node, loc: Loc) -> None:
        if id(node) in seen_nodes:  # an alias points at a node we have already walked
            return
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key, value in node.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else None
                if name is None or name == "<<":
                    continue
                line = key.start_mark.line + 1
                if name in first:
                    problems.append(
                        Problem(
                            f"duplicate key (first at line {first[name]}); YAML would silently keep only the last",
                            path_text((*loc, name)),
                            line,
                        )
                    )
                else:
                    first[name] = line
                walk(value, (*loc, name))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, (*loc, index))

    if root is not None:
        walk(root, ())
    return problems


_REFERENCE = re.compile(r"\$(\$?)\{([^}]*)\}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")
_CRED_NAME = re.compile(r"[A-Za-z0-9_.@-]+$")


@dataclass
class Substitution:
    """Result of :func:`substitute`: the data, problems with their locations, and secret values read."""

    data: Any
    problems: list[tuple[Loc, str]] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)


def substitute(data: Any, environ: Mapping[str, str] | None = None) -> Substitution:
    """Replace ``${VAR}``, ``${VAR:-default}`` and ``${cred:NAME}`` in every string value.

    ``${cred:NAME}`` reads the systemd credential ``$CREDENTIALS_DIRECTORY/NAME`` (``LoadCredential=``
    in the unit), without its trailing newline; its value is always treated as a secret.
    ``$${...}`` stands for a literal ``${...}``.
    """
    env = os.environ if environ is None else environ
    result = Substitution(data=None)

    def expand(text: str, loc: Loc) -> str:
        def repl(match: re.Match[str]) -> str:
            if match.group(1):  # $${...}: escaped
                return "${" + match.group(2) + "}"
            body = match.group(2)
            name, sep, default = body.partition(":-")
            fallback = default if sep else None
            if name.startswith("cred:"):
                return _credential(name[5:], fallback, env, loc, result)
            if not _ENV_NAME.match(name):
                result.problems.append(
                    (loc, f"bad substitution ${{{body}}}: use ${{VAR}}, ${{VAR:-default}} or ${{cred:NAME}}")
                )
                return match.group(0)
            if name in env:
                return env[name]
            if fallback is not None:
                return fallback
            hint = f"set it, or write ${{{name}:-default}}"
            result.problems.append((loc, f"environment variable ${name} is not set ({hint})"))
            return match.group(0)

        return _REFERENCE.sub(repl, text)

    def walk(node: Any, loc: Loc) -> Any:
        if isinstance(node, dict):
            return {key: walk(value, (*loc, key)) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(item, (*loc, index)) for index, item in enumerate(node)]
        if isinstance(node, str) and "${" in node:
            return expand(node, loc)
        return node

    result.data = walk(data, ())
    return result


def _credential(name: str, fallback: str | None, env: Mapping[str, str], loc: Loc, result: Substitution) -> str:
    if not _CRED_NAME.match(name):
        result.problems.append((loc, f"bad credential name {name!r} in ${{cred:{name}}}"))
        return ""
    directory = env.get("CREDENTIALS_DIRECTORY")
    path = Path(directory) / name if directory else None
    if path is None or not path.is_file():
        if fallback is not None:
            return fallback
        where = (
            f"{path} does not exist"
            if path
            else "$CREDENTIALS_DIRECTORY is not set (not started by systemd with LoadCredential=)"
        )
        result.problems.append(
            (loc, f"systemd credential {name!r} is not available: {where}; add LoadCredential={name}:FILE to the unit")
        )
        return ""
    try:
        value = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        result.problems.append((loc, f"cannot read systemd credential {name!r}: {exc}"))
        return ""
    value = value[:-1] if value.endswith("\n") else value
    value = value[:-1] if value.endswith("\r") else value
    result.secrets.append(value)
    return value
