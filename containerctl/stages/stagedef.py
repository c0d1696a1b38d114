"""The pydantic model of a stage file (catalog.py validates with it). Its own module so that a
command whose stage files were validated before never imports pydantic (containerctl.validated
remembers the result)."""
from __future__ import annotations

from typing import Optional

from pydantic import BaseModel, ConfigDict, Field


class StageDef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    requires: list[str] = Field(default_factory=list)
    timeout: int = Field(1800, ge=1)
    script: str
    parse: Optional[str] = None
    applies: Optional[str] = None            # a Jinja2 expression over the context
    not_applicable: str = "does not apply to this profile"
    host_prepare: Optional[str] = None       # a host-side step before the script (flagcx_source)
    assets: list[str] = Field(default_factory=list)  # files from stages/assets copied to $CCTL_DIR/assets
    scope: str = "host"                      # host | cluster
    needs_flagcx: bool = False               # the runner probes the checkout first (flagcx/)
    internal: bool = False                   # part of another stage: never picked by `run`
    order: int = 0
    file: Optional[str] = Field(None, exclude=True)
