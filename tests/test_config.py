import pytest

from search.config import ConfigError, build_config, check_run_name, dump_yaml


def test_defaults_are_the_laptop_preset() -> None:
    assert build_config() == build_config(preset="laptop")


def test_smoke_preset_overrides_only_its_fields() -> None:
    smoke = build_config(preset="smoke")
    defaults = build_config()

    assert smoke.search.samples == 8
    assert smoke.asha.max_t == 4
    assert smoke.retrain.notebook_baseline is False
    assert smoke.space == defaults.space
    assert smoke.data.length == defaults.data.length


def test_layers_apply_in_order_preset_file_overrides(tmp_path) -> None:
    file = tmp_path / "config.yaml"
    file.write_text("search:\n  samples: 5\n  seed: 7\nasha:\n  max_t: 6\n")

    config = build_config(preset="smoke", file=file, overrides={"search.samples": 3, "run.name": None})

    assert config.search.samples == 3  # the command line wins over the file
    assert config.search.seed == 7  # the file wins over the preset
    assert config.asha.max_t == 6
    assert config.asha.grace_period == 1  # the preset wins over the defaults


def test_learning_rate_in_scientific_notation_without_dot(tmp_path) -> None:
    # YAML 1.1 reads 1e-4 as a string; the loader turns it back into a number.
    file = tmp_path / "config.yaml"
    file.write_text("space:\n  learning_rate: [1e-4, 3e-2]\n")

    assert build_config(file=file).space.learning_rate == [1e-4, 3e-2]


def test_dump_yaml_round_trips(tmp_path) -> None:
    config = build_config(preset="smoke", overrides={"run.name": "abc"})
    file = tmp_path / "resolved.yaml"
    file.write_text(dump_yaml(config))

    assert build_config(file=file) == config


@pytest.mark.parametrize(
    ("yaml_text", "expected_message"),
    [
        ("- 1\n- 2\n", "contains a list, expected a mapping"),
        ("data: [1, 2\n", "is not valid YAML at line"),
        ("dta:\n  length: 3\n", "dta: unknown key. Did you mean 'data'"),
        ("data:\n  lenght: 3\n", "data.lenght: unknown key. Did you mean 'data.length'"),
        ("data: 5\n", "data: got 5, expected a mapping"),
        ("data:\n  length: 0\n", "data.length: got 0, must be an integer >= 1"),
        ("data:\n  horizon: 0\n", "data.horizon: got 0, must be an integer >= 1"),
        ("data:\n  n_train: ten\n", "data.n_train: got 'ten', expected an integer"),
        ("data:\n  n_train: 1.5\n", "data.n_train: got 1.5, expected an integer"),
        ("space:\n  depth: [0, 3]\n", "space.depth: got low bound 0, must be >= 1"),
        ("space:\n  depth: [3, 1]\n", r"space.depth: got \[3, 1\], but low must not exceed high"),
        ("space:\n  units: 64\n", "space.units: got 64, expected a list of two integers"),
        ("space:\n  learning_rate: [0, 0.1]\n", "space.learning_rate: got low bound 0, but a log-uniform range"),
        ("space:\n  learning_rate: [-0.1, 0.1]\n", "space.learning_rate: got low bound -0.1"),
        ("space:\n  learning_rate: [0.1, 0.01]\n", "space.learning_rate: got \\[0.1, 0.01\\], but low"),
        ("search:\n  samples: 0\n", "search.samples: got 0, must be an integer >= 1"),
        ("search:\n  max_concurrent_trials: -1\n", "search.max_concurrent_trials: got -1, must be an integer >= 0"),
        ("asha:\n  grace_period: 0\n", "asha.grace_period: got 0, must be an integer >= 1"),
        ("asha:\n  reduction_factor: 1\n", "asha.reduction_factor: got 1, must be an integer >= 2"),
        ("asha:\n  max_t: 2\n  grace_period: 3\n", "asha.grace_period: got 3, but it must not exceed asha.max_t=2"),
        ("retrain:\n  notebook_baseline: 'yes'\n", "retrain.notebook_baseline: got 'yes', expected true or false"),
        ("run:\n  name: a/b\n", "--name: got 'a/b', expected a single folder name"),
        ("run:\n  storage: ''\n", "run.storage: got an empty string"),
    ],
)
def test_config_file_errors_name_field_value_and_rule(tmp_path, yaml_text, expected_message) -> None:
    file = tmp_path / "config.yaml"
    file.write_text(yaml_text)

    with pytest.raises(ConfigError, match=expected_message):
        build_config(file=file)


def test_missing_config_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        build_config(file=tmp_path / "absent.yaml")


def test_unknown_preset() -> None:
    with pytest.raises(ConfigError, match="--preset: got 'huge', expected one of laptop, smoke"):
        build_config(preset="huge")


@pytest.mark.parametrize("name", ["..", ".", "a/b", "a\\b", "x..y", ""])
def test_run_name_rejects_paths(name) -> None:
    with pytest.raises(ConfigError, match="--name"):
        check_run_name(name)
