"""cluster.yaml: Ray's own validation, as `ray up` runs it before any cloud call, and the project's rules."""

from __future__ import annotations

import copy
import shlex

import jsonschema
import pytest

from search.cluster_config import check_cluster_config, load_cluster_config, validate_with_ray
from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def cluster_config() -> dict:
    return load_cluster_config(REPO_ROOT / "cluster.yaml")


def test_cluster_yaml_passes_ray_validation_and_project_rules(cluster_config) -> None:
    assert check_cluster_config(copy.deepcopy(cluster_config)) == []


def test_cluster_yaml_autoscales_cpu_workers(cluster_config) -> None:
    prepared = validate_with_ray(copy.deepcopy(cluster_config))
    workers = prepared["available_node_types"]["cpu_worker"]

    assert prepared["head_node_type"] == "head"
    assert workers["min_workers"] < workers["max_workers"] <= prepared["max_workers"]
    # The head node runs no trial, so every trial lands on an autoscaled worker.
    assert prepared["available_node_types"]["head"]["resources"] == {"CPU": 0}


def test_cluster_yaml_commands_are_valid_shell(cluster_config) -> None:
    keys = ["setup_commands", "head_setup_commands", "worker_setup_commands", "head_start_ray_commands", "worker_start_ray_commands"]
    for key in keys:
        for command in cluster_config[key]:
            assert shlex.split(command), f"{key}: empty command"


def test_cluster_yaml_installs_pinned_requirements_on_every_node(cluster_config) -> None:
    setup = " ".join(cluster_config["setup_commands"])
    requirements = (REPO_ROOT / "requirements-cluster.txt").read_text().splitlines()
    pins = [line for line in requirements if line and not line.startswith("#")]

    assert "requirements-cluster.txt" in setup
    assert cluster_config["file_mounts"]["~/lstm-tune"] == "."
    assert pins, "requirements-cluster.txt pins nothing"
    for line in pins:
        assert "==" in line, f"{line} is not pinned to one version"
    assert any(line.startswith("ray[") and line.endswith("==2.60.0") for line in pins)


def test_cluster_yaml_rejects_wrong_schema(cluster_config) -> None:
    broken = copy.deepcopy(cluster_config)
    broken["available_node_types"]["cpu_worker"]["max_workers"] = "many"

    with pytest.raises(jsonschema.ValidationError):
        check_cluster_config(broken)


def _set(config: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        config = config[key]
    config[last] = value


# Each row changes the shipped cluster.yaml so that it breaks one rule, and names the problem expected.
INSECURE_CASES = [
    # a rule open to every address in the provider's security group
    (
        {
            "provider.security_group": {
                "GroupName": "g",
                "IpPermissions": [{"FromPort": 8265, "ToPort": 8265, "IpProtocol": "tcp", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
            }
        },
        "opens the rule to every address",
    ),
    # without a group of its own, `ray up` makes one that opens SSH to 0.0.0.0/0
    ({"available_node_types.cpu_worker.node_config.SecurityGroupIds": []}, "SecurityGroupIds: missing"),
    # dashboard and Jobs API on every interface
    (
        {"head_start_ray_commands": ["RAY_AUTH_MODE=token ray start --head --port=6379 --dashboard-host=0.0.0.0"]},
        "--dashboard-host=0.0.0.0 exposes",
    ),
    # a worker that joins without token authentication
    ({"worker_start_ray_commands": ["ray stop", "ray start --address=$RAY_HEAD_IP:6379"]}, "without RAY_AUTH_MODE=token"),
    # token authentication switched off on the head node
    (
        {"head_start_ray_commands": ["RAY_AUTH_MODE=disabled ray start --head --port=6379 --dashboard-host=127.0.0.1"]},
        "without RAY_AUTH_MODE=token",
    ),
    # the token file never reaches the nodes
    ({"file_mounts": {"~/lstm-tune": "."}}, "is not copied to the nodes"),
    # more workers required than the worker type allows
    (
        {"available_node_types.cpu_worker.min_workers": 3, "available_node_types.cpu_worker.max_workers": 2},
        "min_workers=3 exceeds max_workers=2",
    ),
    # a worker type larger than the whole cluster
    ({"max_workers": 2}, "max_workers=4 exceeds the cluster's max_workers=2"),
]


@pytest.mark.parametrize(("changes", "expected_problem"), INSECURE_CASES)
def test_cluster_rules_reject_insecure_or_inconsistent_change(cluster_config, changes, expected_problem) -> None:
    changed = copy.deepcopy(cluster_config)
    for dotted, value in changes.items():
        _set(changed, dotted, value)

    problems = check_cluster_config(changed)

    assert any(expected_problem in problem for problem in problems), problems


def test_cluster_search_config_sets_concurrent_trials() -> None:
    from search.config import build_config

    config = build_config(file=REPO_ROOT / "config.cluster.yaml")

    # With the default of 0 the limit is the CPUs at the start, 1 on a head node without CPUs.
    assert config.search.max_concurrent_trials > 1
