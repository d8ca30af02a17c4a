"""Limits on the shape of a YAML document, checked before anything walks it recursively.

A config is a few levels deep and a few hundred values big. YAML can say much more: thousands of nested
brackets (PyYAML's composer, the substitution pass and pydantic all recurse, and Python's stack ends at
about 1000 frames), aliases that refer to themselves (an endless walk), aliases of aliases that expand a
few lines into billions of values, and escapes for characters no setting can hold (NUL, lone UTF-16
surrogates, which cannot even be printed as UTF-8). Each becomes one problem with its key path and line,
like any other mistake, instead of a traceback or a hang.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edge_fer.config.problems import Loc, Problem, path_text

MAX_DEPTH = 32  # the deepest real setting is 4 levels down (cameras[0].reconnect.max_delay)
MAX_VALUES = 100_000  # values after expanding aliases


def depth_problem(text: str) -> Problem | None:
    """The first collection nested deeper than :data:`MAX_DEPTH`, found from YAML's parse events.

    The event parser keeps its own stack instead of recursing, so this runs before the (recursive)
    composer ever sees the text. YAML syntax errors propagate as ``yaml.YAMLError``.
    """
    import yaml

    frames: list[list[Any]] = []  # [is_mapping, current key or index, expecting a key]
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            frames.pop()
            continue
        if not isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent, yaml.CollectionStartEvent)):
            continue
        if frames:
            top = frames[-1]
            if top[0]:  # in a mapping: keys and values alternate
                if top[2]:
                    top[1] = event.value if isinstance(event, yaml.ScalarEvent) else "?"
                top[2] = not top[2]
            else:
                top[1] += 1
        if isinstance(event, yaml.CollectionStartEvent):
            frames.append([isinstance(event, yaml.MappingStartEvent), -1, True])
            if len(frames) > MAX_DEPTH:
                loc = tuple(f[1] for f in frames[:-1])
                return Problem(
                    f"nested more than {MAX_DEPTH} levels deep; no setting is, check the brackets and indentation",
                    path_text(loc) or "(top level)",
                    event.start_mark.line + 1,
                )
    return None


def shape_problems(data: Any, line_of: Callable[[Loc], int | None]) -> tuple[list[Problem], bool]:
    """Problems with the loaded data, and whether one is fatal (nothing else should walk the data then).

    Fatal: an alias that contains itself, nesting past :data:`MAX_DEPTH` through aliases, more than
    :data:`MAX_VALUES` values once aliases are expanded. Not fatal: strings holding NUL or lone surrogates.
    Shared containers (aliases) are measured once, so a billion-laughs document costs its written size.
    """
    sizes: dict[int, tuple[int, int]] = {}  # id -> (values, depth) of a finished container
    open_ids: set[int] = set()
    problems: list[Problem] = []
    stack: list[tuple[Any, Loc, bool]] = [(data, (), False)]
    while stack:
        node, loc, done = stack.pop()
        if not isinstance(node, (dict, list)):
            if isinstance(node, str):
                bad = _bad_character(node)
                if bad:
                    problems.append(Problem(bad, path_text(loc) or "(top level)", line_of(loc)))
            continue
        key = id(node)
        children = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        if done:
            open_ids.discard(key)
            measured = [sizes.get(id(v), (1, 0)) for _, v in children]
            sizes[key] = (1 + sum(n for n, _ in measured), 1 + max((d for _, d in measured), default=0))
            continue
        if key in sizes:
            continue
        if key in open_ids:
            message = "an alias (*name) refers to the value that contains it"
            return [Problem(message, path_text(loc), line_of(loc))], True
        if len(loc) > MAX_DEPTH:
            message = f"nested more than {MAX_DEPTH} levels deep (through aliases); no setting is"
            return [Problem(message, path_text(loc), line_of(loc))], True
        open_ids.add(key)
        stack.append((node, loc, True))
        stack.extend((value, (*loc, k), False) for k, value in reversed(children))
    total = sizes.get(id(data), (1, 0))[0]
    if total > MAX_VALUES:
        loc: Loc = ()
        if isinstance(data, dict) and data:
            loc = (max(data, key=lambda k: sizes.get(id(data[k]), (1, 0))[0]),)
            total = sizes.get(id(data[loc[0]]), (1, 0))[0]
        message = f"expands to {total} values through aliases (*name); a config holds far fewer, write it out"
        return [Problem(message, path_text(loc) or "(top level)", line_of(loc) or 1)], True
    return problems, False


def _bad_character(text: str) -> str | None:
    if "\0" in text:
        return "contains a NUL character (\\0); no setting can hold one"
    for ch in text:
        if "\ud800" <= ch <= "\udfff":
            return f"contains an invalid Unicode escape (a lone surrogate \\u{ord(ch):04x}); write the character itself"
    return None
