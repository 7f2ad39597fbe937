"""The search configuration: every knob of a run, its defaults, the presets and their validation.

A configuration is built in layers, each overriding the one before: the defaults
below, then a preset (``smoke`` or ``laptop``), then a YAML file, then command-line
options. Every value is checked once the layers are merged, and the first invalid
one raises :class:`ConfigError` naming the field, the value and what is allowed.
"""

from __future__ import annotations

import copy
import difflib
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """An invalid configuration value, with the field's dotted name in the message."""


@dataclass
class DataConfig:
    """Sizes and seeds of the damped-sine data sets."""

    length: int = 50  # input steps per example
    horizon: int = 5  # forecast steps per example
    n_train: int = 2000  # training series per trial
    n_val: int = 500  # validation series per trial, scored after every epoch
    n_test: int = 1000  # test series of the final comparison
    seed: int = 0  # seeds the training, validation and retraining sets
    test_seed: int = 20_240_601  # fixed apart from `seed`, so every run is scored on the same test set


@dataclass
class SpaceConfig:
    """Search space: inclusive ``[low, high]`` ranges, sampled by Optuna."""

    depth: list[int] = field(default_factory=lambda: [1, 4])  # LSTM layers, uniform integer
    units: list[int] = field(default_factory=lambda: [8, 128])  # units per layer, log-uniform integer
    batch_size: list[int] = field(default_factory=lambda: [8, 128])  # log-uniform integer
    learning_rate: list[float] = field(default_factory=lambda: [1e-4, 3e-2])  # log-uniform


@dataclass
class SearchConfig:
    """How many trials to run and how the Optuna sampler is seeded."""

    samples: int = 20  # trials to run in all
    seed: int = 0  # seeds Optuna's TPE sampler and each trial's weight initialisation
    max_concurrent_trials: int = 0  # 0 fills the CPUs that Ray reports
    max_failures: int = 2  # retries of a trial whose worker died, each from its last checkpoint


@dataclass
class AshaConfig:
    """ASHA early stopping, with epochs as the time attribute.

    A trial runs at least ``grace_period`` epochs (ASHA's minimum resource r) and at
    most ``max_t`` (the maximum resource R). At each rung only the best
    1/``reduction_factor`` (η) of the trials that reached it go on.
    """

    max_t: int = 20
    grace_period: int = 2
    reduction_factor: int = 3


@dataclass
class RetrainConfig:
    """Retraining of the best configuration on more data, and the baselines it is compared with."""

    n_train: int = 8000  # training series for the retrain
    epochs: int = 40  # upper bound: the retrain stops earlier once validation MAE stalls
    patience: int = 8  # epochs without a better validation MAE before the retrain stops
    max_time_s: int = 360  # wall-time budget in seconds; 0 means none. Checked after each epoch
    notebook_baseline: bool = True  # also train the starting notebook's 4x20 model as a baseline


@dataclass
class ResourcesConfig:
    """CPUs given to Ray and to each trial."""

    cpus_per_trial: int = 1
    num_cpus: int = 0  # CPUs of a local Ray that the program starts; 0 takes every core


@dataclass
class RunConfig:
    """Storage location and name of a run."""

    storage: str = "runs"  # local folder, or any URI Ray Tune accepts (s3://, gs://, ...)
    name: str = ""  # empty picks `search-YYYYmmdd-HHMMSS`
    shared_storage: bool = False  # declare a local `storage` path visible to every node of a cluster


@dataclass
class Config:
    """Every setting of a search run."""

    data: DataConfig = field(default_factory=DataConfig)
    space: SpaceConfig = field(default_factory=SpaceConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    asha: AshaConfig = field(default_factory=AshaConfig)
    retrain: RetrainConfig = field(default_factory=RetrainConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Presets override only what differs from the defaults above, which are the laptop preset.
PRESETS: dict[str, dict[str, Any]] = {
    "laptop": {},
    "smoke": {
        "data": {"n_train": 256, "n_val": 128, "n_test": 256},
        "search": {"samples": 8},
        "asha": {"max_t": 4, "grace_period": 1, "reduction_factor": 3},
        "retrain": {"n_train": 512, "epochs": 3, "patience": 3, "max_time_s": 60, "notebook_baseline": False},
    },
}

# Lower bounds of integer fields, by dotted name; every other integer field may be any integer.
_MINIMUM = {
    "data.length": 1,
    "data.horizon": 1,
    "data.n_train": 1,
    "data.n_val": 1,
    "data.n_test": 1,
    "search.samples": 1,
    "search.max_concurrent_trials": 0,
    "search.max_failures": 0,
    "asha.max_t": 1,
    "asha.grace_period": 1,
    "asha.reduction_factor": 2,
    "retrain.n_train": 1,
    "retrain.epochs": 1,
    "retrain.patience": 1,
    "retrain.max_time_s": 0,
    "resources.cpus_per_trial": 1,
    "resources.num_cpus": 0,
}

# Lower bounds of the search-space ranges, by dotted name.
_SPACE_MINIMUM = {"space.depth": 1, "space.units": 1, "space.batch_size": 1}


def build_config(
    preset: str | None = None,
    file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Merge the defaults, a preset, a YAML file and dotted overrides, then validate.

    Args:
        preset: ``"smoke"``, ``"laptop"`` or None for the defaults.
        file: Path of a YAML file whose mapping has the same sections as :class:`Config`.
        overrides: Dotted names to values, e.g. ``{"search.samples": 4}``. A value
            of None leaves the field as the earlier layers set it.

    Raises:
        ConfigError: If the preset is unknown, the file cannot be read or parsed,
            or any value is invalid.
    """
    tree = Config().to_dict()

    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"--preset: got '{preset}', expected one of {', '.join(sorted(PRESETS))}.")
        _merge(tree, PRESETS[preset], prefix="")

    if file is not None:
        _merge(tree, load_yaml_mapping(file), prefix="")

    for dotted, value in (overrides or {}).items():
        if value is not None:
            section, key = dotted.split(".", 1)
            _merge(tree, {section: {key: value}}, prefix="")

    tree["space"]["learning_rate"] = _parse_float_strings(tree["space"]["learning_rate"])
    config = _from_tree(tree)
    validate(config)
    return config


def load_yaml_mapping(file: str | Path) -> dict[str, Any]:
    """Read a YAML file that must hold a mapping; YAML's safe loader builds no Python objects."""
    path = Path(file)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"--config: file '{path}' not found; pass the path of a YAML config file.") from None
    except IsADirectoryError:
        raise ConfigError(f"--config: '{path}' is a folder, not a YAML config file.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"--config: cannot read '{path}': {error}.") from None

    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"--config: '{path}' is not valid YAML{line}; fix the syntax there.") from None

    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(
            f"--config: '{path}' contains a {type(loaded).__name__}, expected a mapping of sections "
            f"({', '.join(Config().to_dict())})."
        )
    return loaded


def _merge(tree: dict[str, Any], update: Mapping[str, Any], prefix: str) -> None:
    """Copy ``update`` into ``tree``, rejecting keys that ``tree`` does not have."""
    for key, value in update.items():
        dotted = f"{prefix}{key}"
        if key not in tree:
            known = [str(name) for name in tree]
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" Did you mean '{prefix}{close[0]}'?" if close else f" Known keys: {', '.join(known)}."
            raise ConfigError(f"{dotted}: unknown key.{hint}")

        if isinstance(tree[key], dict):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{dotted}: got {value!r}, expected a mapping of {', '.join(tree[key])}.")
            _merge(tree[key], value, prefix=f"{dotted}.")
        else:
            tree[key] = copy.deepcopy(value)


_SECTIONS = {
    "data": DataConfig,
    "space": SpaceConfig,
    "search": SearchConfig,
    "asha": AshaConfig,
    "retrain": RetrainConfig,
    "resources": ResourcesConfig,
    "run": RunConfig,
}


def _from_tree(tree: dict[str, Any]) -> Config:
    return Config(**{name: _SECTIONS[name](**values) for name, values in tree.items()})


def _parse_float_strings(values: Any) -> Any:
    """Turn strings such as '1e-4' into floats: YAML 1.1 reads a number without a dot as a string."""
    if not isinstance(values, list):
        return values
    parsed = []
    for value in values:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        parsed.append(value)
    return parsed


def _check_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name}: got {value!r}, expected an integer.")
    minimum = _MINIMUM.get(name)
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}: got {value}, must be an integer >= {minimum}.")
    return value


def _check_range(name: str, value: Any, integer: bool, log: bool) -> None:
    kind = "integers" if integer else "numbers"
    if not isinstance(value, list) or len(value) != 2:
        raise ConfigError(f"{name}: got {value!r}, expected a list of two {kind} [low, high].")

    for bound in value:
        is_number = isinstance(bound, int) if integer else isinstance(bound, (int, float))
        if isinstance(bound, bool) or not is_number or not math.isfinite(bound):
            raise ConfigError(f"{name}: got {value!r}, expected a list of two finite {kind} [low, high].")

    low, high = value
    minimum = _SPACE_MINIMUM.get(name)
    if minimum is not None and low < minimum:
        raise ConfigError(f"{name}: got low bound {low}, must be >= {minimum}.")
    if log and low <= 0:
        raise ConfigError(f"{name}: got low bound {low}, but a log-uniform range needs bounds > 0.")
    if low > high:
        raise ConfigError(f"{name}: got [{low}, {high}], but low must not exceed high; swap the bounds.")


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{name}: got {value!r}, expected true or false.")


def _check_str(name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise ConfigError(f"{name}: got {value!r}, expected a string.")


def validate(config: Config) -> None:
    """Check every field and the rules between fields.

    Raises:
        ConfigError: On the first invalid value.
    """
    for section_name, section in config.to_dict().items():
        for key, value in section.items():
            name = f"{section_name}.{key}"
            if section_name == "space":
                _check_range(name, value, integer=key != "learning_rate", log=key != "depth")
            elif key in ("storage", "name"):
                _check_str(name, value)
            elif key in ("notebook_baseline", "shared_storage"):
                _check_bool(name, value)
            else:
                _check_int(name, value)

    if config.asha.grace_period > config.asha.max_t:
        raise ConfigError(
            f"asha.grace_period: got {config.asha.grace_period}, but it must not exceed "
            f"asha.max_t={config.asha.max_t}; lower grace_period or raise max_t."
        )
    if not config.run.storage:
        raise ConfigError("run.storage: got an empty string, expected a folder or a URI such as s3://bucket/path.")
    if config.run.name:
        check_run_name(config.run.name)


def check_run_name(name: str) -> str:
    """Check that a run name is a single folder name, then return it.

    Raises:
        ConfigError: If the name is empty, is '.' or '..', or contains a path separator.
    """
    if not name or name in (".", "..") or "/" in name or "\\" in name or ".." in name:
        raise ConfigError(
            f"--name: got '{name}', expected a single folder name without '/', '\\' or '..', "
            "such as 'lstm-2026-12-04'."
        )
    return name


def dump_yaml(config: Config) -> str:
    """Return the configuration as YAML that :func:`build_config` reads back unchanged."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False)
