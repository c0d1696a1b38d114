"""Which devices a container or a stage sees: the platform's visible-devices variable
(flagcx.visible_devices_env: CUDA_VISIBLE_DEVICES, XPU_VISIBLE_DEVICES, …) and its value, decided
here for both the container's environment (runspec) and a stage's (stages/context.make_context).

No pydantic here: the runner reads remembered profiles (validated.Frozen) without the models,
so `fx` is anything with the FlagCXOpts attributes.
"""
from __future__ import annotations

from typing import Any


def visible_devices(fx: Any, nranks: int | None = None, plan: dict | None = None) -> str | None:
    """The device list to make visible, or None for none.

    `plan`: a device plan (flagcx.variants.device_plan) whose visible_devices, when it has one,
    replaces the profile's. `auto` means one device per rank, 0..nranks-1: only a stage knows
    its rank count, so without `nranks` (the container, made before any count) auto is None."""
    value = (plan or {}).get("visible_devices", fx.visible_devices)
    if value == "auto":
        return None if nranks is None else ",".join(str(i) for i in range(nranks))
    return value


def visible_devices_env(fx: Any, nranks: int | None = None,
                        plan: dict | None = None) -> dict[str, str]:
    """{the platform's variable: the list} to put in an environment, or {} where the profile
    names no variable or there is no list (see visible_devices)."""
    value = visible_devices(fx, nranks, plan)
    if not fx.visible_devices_env or value is None:
        return {}
    return {fx.visible_devices_env: value}
