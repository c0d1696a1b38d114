"""containerctl/sizes.py: the one parser and formatter of sizes (issue 22).

It replaced two parsers (profiles.parse_size: shm_size, ulimits, perf -b/-e; results.references
.parse_size: message-size keys) and two formatters (doctor._human; references.human_size /
short_size). The two old parsers are kept here, verbatim, as oracles: every input either accepted
gives the same bytes through its caller's policy, and every input both refused stays refused.
"""
from __future__ import annotations

import re

import pytest
from hypothesis import given, settings, strategies as st

from containerctl import doctor, profiles, sizes
from containerctl.errors import UsageError
from containerctl.results import references
from containerctl.sizes import SizeError, approx_size, human_size, parse_size, short_size

# ---- the two copies this module replaced (as they were at b5768ed) -----------------------------

_P_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(i?[bB]?)\s*$")
_P_MULT = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def old_profiles(value):
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int):
        if value < 0:
            raise ValueError
        return value
    m = _P_RE.match(str(value))
    if not m:
        raise ValueError
    return int(float(m.group(1)) * _P_MULT[m.group(2).lower()])


_R_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def old_references(s):
    if isinstance(s, bool):
        raise ValueError
    if isinstance(s, int):
        if s <= 0:
            raise ValueError
        return s
    m = _R_RE.match(str(s))
    if not m:
        raise ValueError
    n = float(m.group(1)) * (1024 ** " kmgt".index(m.group(2).lower() or " "))
    if n <= 0 or n != int(n):
        raise ValueError
    return int(n)


def _outcome(fn, value):
    try:
        return fn(value)
    except (ValueError, UsageError):
        return "refused"


# ---- parsing ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("128K", 128 << 10), ("128k", 128 << 10), ("4G", 4 << 30), ("64g", 64 << 30),
    ("100gb", 100 << 30), ("100GB", 100 << 30), ("8MiB", 8 << 20), ("8mib", 8 << 20),
    ("8Mi", 8 << 20), ("4GIB", 4 << 30), ("4GIb", 4 << 30), ("1T", 1 << 40), ("4096", 4096),
    ("  16 M  ", 16 << 20), ("1.5M", 1572864), ("512B", 512), ("512b", 512), ("0", 0),
    ("1.5", 1), ("0.3K", 307), (4096, 4096), (0, 0), ("4G\n", 4 << 30),
])
def test_accepted_spellings(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", [
    "", " ", "G", "12XB", "4GI", "4P", "4 G B", "-1", "-4G", "4G4", "1e3", "4.G", ".5G", "4,5G",
    "4GiBB", "4 GiB extra", "0x10", "1_000",
])
def test_refused_spellings(text):
    with pytest.raises(SizeError) as e:
        parse_size(text, "shm_size")
    assert e.value.kind == "syntax"
    assert str(e.value) == f"shm_size {text!r} is not a size: use a number with K, M, G or T " \
                           "(e.g. 64G)"
    assert "\n" not in str(e.value)


def test_type_and_sign_refusals_say_what():
    with pytest.raises(SizeError, match=r"^shm_size must be a size like 64G, got True$") as e:
        parse_size(True, "shm_size")
    assert e.value.kind == "type"
    with pytest.raises(SizeError, match=r"^shm_size must not be negative$") as e:
        parse_size(-1, "shm_size")
    assert e.value.kind == "negative"
    # a SizeError is a ValueError: pydantic validators turn it into a located profile error
    assert issubclass(SizeError, ValueError)


def test_positive_and_whole_policy():
    assert parse_size("1.5M", positive=True, whole=True) == 1572864
    assert parse_size("4096.0", whole=True) == 4096
    for bad, kind in [("0.3K", "value"), ("1.5", "value"), ("0", "value"), ("0K", "value"),
                      (0, "zero"), (-5, "negative"), (False, "type"), ("x", "syntax")]:
        with pytest.raises(SizeError) as e:
            parse_size(bad, "message size", positive=True, whole=True)
        assert e.value.kind == kind, bad
    # without the policy the same texts pass, truncated as docker does
    assert parse_size("0.3K") == 307 and parse_size("0") == 0


_ALPHABET = "0123456789.kKmMgGtTpPiIbBx -\n"


def _bytes(m) -> float:
    return float(m.group(1)) * _P_MULT[m.group(2).lower()]


@settings(max_examples=3000, deadline=None)
@given(st.one_of(st.text(alphabet=_ALPHABET, max_size=8),
                 st.from_regex(r"\A\s?\d{1,4}(\.\d{1,3})?\s?[kKmMgGtT]?[iI]?[bB]?\s?\Z"),
                 st.integers(min_value=-5, max_value=1 << 50), st.booleans()))
def test_same_as_both_old_copies(value):
    """profiles' policy gives exactly what profiles' copy gave; the message-size policy exactly
    what references' copy gave; a spelling both copies' grammars refused is still refused."""
    new_p = _outcome(profiles.parse_size, value)
    new_r = _outcome(references.parse_size, value)
    old_p, old_r = _outcome(old_profiles, value), _outcome(old_references, value)
    if old_p != "refused":
        assert new_p == old_p
    if old_r != "refused":
        assert new_r == old_r
    if isinstance(value, (bool, int)):
        assert (new_p, new_r) == (old_p, old_r)
        return
    p_gram, r_gram = _P_RE.match(value), _R_RE.match(value)
    if not p_gram and not r_gram:
        assert new_p == "refused" and new_r == "refused"
    # the only change: a spelling one grammar took and the other refused is now read by both,
    # each with its own policy (profiles truncate; a message size is positive and whole)
    if new_p != old_p:
        assert old_p == "refused" and r_gram and new_p == int(_bytes(r_gram))
    if new_r != old_r:
        assert old_r == "refused" and p_gram and not r_gram
        n = _bytes(p_gram)
        assert new_r == (int(n) if n > 0 and n == int(n) else "refused")


def test_the_disagreements_and_the_choice():
    """The old copies disagreed on `4Gi` (profiles only) and `4GIB` (references only): both are
    docker spellings, so both are taken everywhere now."""
    assert _outcome(old_profiles, "4Gi") == 4 << 30 and _outcome(old_references, "4Gi") == "refused"
    assert _outcome(old_profiles, "4GIB") == "refused" and _outcome(old_references, "4GIB") == 4 << 30
    for text in ("4Gi", "4GIB"):
        assert profiles.parse_size(text) == references.parse_size(text) == 4 << 30


def test_callers_keep_their_messages():
    with pytest.raises(ValueError, match=r"^shm_size '12XB' is not a size: use a number with K"):
        profiles.parse_size("12XB", "shm_size")
    for bad, hint in [("0.3K", "it must come to a positive whole number of bytes"),
                      (0, "a positive number of bytes, or 128K / 4M / 1G"),
                      ("x", "a number of bytes, or 128K / 4M / 1G (1024-based)"), (True, None)]:
        with pytest.raises(UsageError) as e:
            references.parse_size(bad)
        assert e.value.message == f"bad message size {bad!r}" and e.value.hint == hint
    assert profiles.parse_ulimit("memlock", "8M") == (8 << 20, 8 << 20)
    assert profiles.parse_ulimit("memlock", "8Mi") == (8 << 20, 8 << 20)
    assert profiles.parse_ulimit("nofile", "65535") == (65535, 65535)


# ---- formatting -------------------------------------------------------------------------------

def test_human_and_short_are_exact():
    assert human_size(131072) == "128 KiB" and short_size(131072) == "128K"
    assert human_size(4 << 30) == "4 GiB" and short_size(4 << 30) == "4G"
    assert human_size(1 << 40) == "1 TiB" and short_size(1 << 40) == "1T"
    assert human_size(1000) == "1000 B" and short_size(1000) == "1000"
    assert human_size(1572864) == "1536 KiB" and short_size(1572864) == "1536K"
    assert human_size(0) == "0 B" and short_size(0) == "0"
    for n in (1, 1023, 1024, 4096, 131072, 1 << 20, 3 << 30, 5 << 40, 12345):
        assert parse_size(short_size(n)) == n        # short_size reads back as what it was


def test_approx_rounds_to_one_decimal():
    assert approx_size(1.5 * 2**30) == "1.5 GiB" and approx_size(2**30) == "1 GiB"
    assert approx_size(1000) == "1000 B" and approx_size(1024) == "1 KiB"
    assert approx_size(1 << 40) == "1 TiB" and approx_size(2.25 * 2**20) == "2.2 MiB"
    assert approx_size(-3 * 2**30) == "-3 GiB" and approx_size(0) == "0 B"


def test_one_copy_each():
    """The callers use sizes.py's functions, not copies of their own."""
    assert references.human_size is sizes.human_size and references.short_size is sizes.short_size
    assert not hasattr(doctor, "_human")
    assert not hasattr(profiles, "_SIZE_RE") and not hasattr(references, "_SIZE_RE")
