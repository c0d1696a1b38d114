"""YAML reading through libyaml where PyYAML has it: its parser is several times faster than the
pure-Python one, and the profile and every stage file are read on each command. On an error the
pure-Python parser reads the text again, so what is reported (the problem and its line) is
worded as it always was; the data are built by the same Python constructor either way."""
from __future__ import annotations

import os

import yaml


MAX_DEPTH = 64   # collections inside collections: profiles use 5; the constructor recurses


def compose(text: str):
    """The node tree of the one document in `text` (None for an empty one). A plain scalar's
    style is None from the pure-Python parser and '' from libyaml: test it with `not style`.
    Nesting deeper than MAX_DEPTH is a YAMLError with the line where it passes the bound (the
    constructor would die of RecursionError: a file nested 5000 deep was exit 70)."""
    fast = getattr(yaml, "CSafeLoader", None)
    node, said = None, None
    if fast is not None:
        try:
            node = yaml.compose(text, Loader=fast)
        except yaml.YAMLError as exc:
            said, fast = exc, None
    if fast is None:
        if said is not None and "nesting depth" in str(getattr(said, "problem", "")):
            _too_deep(getattr(said, "problem_mark", None))    # libyaml's own bound (1000)
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except RecursionError:
            _too_deep(getattr(said, "problem_mark", None))
    _check_depth(node)
    return node


def _too_deep(mark):
    raise yaml.MarkedYAMLError(problem=f"nested more than {MAX_DEPTH} levels deep (mappings "
                               "and lists inside each other)", problem_mark=mark)


def _check_depth(root) -> None:
    """Height of the node graph (aliases followed, each node once, no recursion); past
    MAX_DEPTH, a YAMLError marked at the node where the bound is crossed."""
    if root is None:
        return
    height: dict[int, int] = {}
    deep: dict[int, object] = {}
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        kids = _children(node)
        if done:
            best = max(kids, key=lambda k: height.get(id(k), 0), default=None)
            height[id(node)] = 1 + (height.get(id(best), 0) if best is not None else 0)
            deep[id(node)] = best
            continue
        if id(node) in height:
            continue
        height[id(node)] = 0            # in progress: a cycle counts 0 (_Located refuses it)
        stack.append((node, True))
        stack += [(k, False) for k in kids if id(k) not in height]
    if height[id(root)] <= MAX_DEPTH:
        return
    node = root
    for _ in range(MAX_DEPTH):
        node = deep.get(id(node)) or node
    _too_deep(node.start_mark)


def _children(node) -> list:
    if isinstance(node, yaml.MappingNode):
        return [x for kv in node.value for x in kv]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def construct(node):
    """What yaml.safe_load gives for the document `node` (safe_load is compose, then this)."""
    return None if node is None else yaml.constructor.SafeConstructor().construct_document(node)


def safe_load(text: str):
    """yaml.safe_load(text), the same data and the same errors."""
    return construct(compose(text))


def names_a_file(text: str) -> bool:
    """How a profile or image argument says it is a path, not a name: a .yaml/.yml suffix or a
    path separator."""
    return text.endswith((".yaml", ".yml")) or os.sep in text


def find_named(dirs, name: str):
    """The first `<dir>/<name>.yaml` (or .yml) in search order, or None."""
    for d in dirs:
        for ext in (".yaml", ".yml"):
            f = d / f"{name}{ext}"
            if f.is_file():
                return f
    return None
