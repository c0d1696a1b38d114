"""Platform profiles: YAML files validated by pydantic, with `extends:`, a site overlay and
`--set a.b=c`. Every error names the file, the line and the key, and suggests the nearest key.

    model.py    the models (container, flagcx, stages incl. torch/train, references, limits),
                their validators and defaults, and the checks the CLI shares with them
    loader.py   the search path, YAML with line numbers, extends, the site overlay, --set,
                load_profile and the file:line error messages
    devices.py  the visible-devices variable and its value, for the container (runspec) and a
                stage (stages/context.make_context); no pydantic

Every name of those modules is reachable from here as it was when profiles was one module
(`from containerctl.profiles import load_profile, Profile, _Located`), imported on
first use (PEP 562): importing the package alone loads neither pydantic nor yaml.
"""
from __future__ import annotations

_MODULES = ("devices", "model", "loader")   # searched in this order (devices: no pydantic)

__all__ = [
    # model
    "ContainerOpts", "FlagCXOpts", "LimitsOpts", "PerfOpts", "Profile", "StageOpts",
    "TorchOpts", "TrainOpts", "UnittestOpts", "ULIMIT_NAMES", "MAX_FACTOR", "MAX_ITERS",
    "MAX_PERF_BYTES", "MAX_TIMEOUT_S",
    "check_env_keys", "check_image_ref", "check_perf_range", "check_perf_size", "check_timeout",
    "flagcx_dir_problem", "host_mount_warnings", "json_schema", "parse_size", "parse_ulimit",
    # loader
    "MAX_EXTENDS", "all_profile_names", "apply_sets", "deep_merge", "find_profile_file",
    "format_validation", "input_files", "list_profiles", "load_located", "load_profile", "parse_set",
    "profile_yaml", "read_yaml", "search_dirs", "site_overlay_file", "validate_file",
    # devices
    "visible_devices", "visible_devices_env",
]


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    import importlib   # here: `import containerctl.profiles.devices` (the runner) needs nothing
    for m in _MODULES:
        mod = importlib.import_module(f"{__name__}.{m}")
        if name in vars(mod):
            value = vars(mod)[name]
            globals()[name] = value      # later reads skip this function
            return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
