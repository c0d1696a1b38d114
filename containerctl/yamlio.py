"""YAML reading through libyaml where PyYAML has it: its parser is several times faster than the
pure-Python one, and the profile and every stage file are read on each command. On an error the
pure-Python parser reads the text again, so what is reported (the problem and its line) is
worded as it always was; the data are built by the same Python constructor either way."""
from __future__ import annotations

import yaml


def compose(text: str):
    """The node tree of the one document in `text` (None for an empty one). A plain scalar's
    style is None from the pure-Python parser and '' from libyaml: test it with `not style`."""
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        try:
            return yaml.compose(text, Loader=fast)
        except yaml.YAMLError:
            pass
    return yaml.compose(text, Loader=yaml.SafeLoader)


def construct(node):
    """What yaml.safe_load gives for the document `node` (safe_load is compose, then this)."""
    return None if node is None else yaml.constructor.SafeConstructor().construct_document(node)


def safe_load(text: str):
    """yaml.safe_load(text), the same data and the same errors."""
    return construct(compose(text))
