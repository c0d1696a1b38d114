"""The profile's variant models (stages.perf.variants / stages.unittest.variants): pydantic, read
by profiles/model.py. What a variant means at run time is in variants.py."""
from __future__ import annotations

import re
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .interface import WORD_RE

MAKE_ASSIGN_RE = re.compile(r"^[A-Z][A-Z0-9_]*=\S+$")


def check_make_assignments(values: list[str], what: str, example: str) -> list[str]:
    """The one rule for what goes on FlagCX's make line from a profile (flagcx.make_flags, a
    variant's make_vars): NAME=value, NAME in capitals."""
    for f in values:
        if not MAKE_ASSIGN_RE.match(f):
            raise ValueError(f"{what} {f!r} must look like {example}")
    return values


class VariantNeeds(BaseModel):
    model_config = ConfigDict(extra="forbid")
    options: list[str] = Field(default_factory=list)      # perf getopt letters, e.g. [R]
    make_var: Optional[str] = None                        # e.g. COMPILE_KERNEL: a Makefile reads it
    min_ranks: int = Field(1, ge=1)                       # e.g. 2 for a split into two clusters
    components: list[str] = Field(default_factory=list)   # unittest dirs that must exist


class Variant(BaseModel):
    """One named way to run a stage."""
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)
    description: str = ""
    ci: str = ""                               # where FlagCX's CI runs the same (file: step)
    env: dict[str, str] = Field(default_factory=dict)
    extra_args: list[str] = Field(default_factory=list)   # perf: after the probed options
    colls: Optional[list[str]] = None          # perf: default the stage's collectives
    begin: Optional[str] = None
    end: Optional[str] = None
    iters: Optional[int] = None
    root: Optional[int] = None                 # perf: -r (where getopt has it)
    nranks: Optional[int] = Field(None, ge=1)  # at most this many ranks (CI's -np 2 for put/get)
    components: Optional[list[str]] = None     # unittest: the suites this variant runs
    make_vars: list[str] = Field(default_factory=list)    # unittest/perf make: NAME=VALUE
    expect_hybrid: bool = False                # the communicator must say it is hybrid
    hosts: Optional[int] = Field(None, ge=2, le=64)   # perf: ranks split into this many logical
                                               # nodes by FLAGCX_HOSTID (one MPMD segment each)
    needs: VariantNeeds = Field(default_factory=VariantNeeds)

    @field_validator("env", mode="before")
    @classmethod
    def _env(cls, v):
        if isinstance(v, dict):
            v = {str(k): ("" if x is None else str(x)) for k, x in v.items()}
            for k in v:
                if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", k):
                    raise ValueError(f"variant env name {k!r} is not a variable name")
        return v

    @field_validator("make_vars")
    @classmethod
    def _mv(cls, v):
        return check_make_assignments(v, "make variable", "COMPILE_KERNEL=1")

    @field_validator("colls", "components")
    @classmethod
    def _words(cls, v):
        for c in v or []:
            if not WORD_RE.match(c):
                raise ValueError(f"{c!r}: a FlagCX perf test or unit-test suite name")
        return v
