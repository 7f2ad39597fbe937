"""Offline checks of a Ray cluster-launcher config such as cluster.yaml.

``ray up`` first fills in the provider's defaults and validates the config against
Ray's schema (``prepare_config`` and ``validate_config`` in
``ray.autoscaler._private.util``, Ray 2.60), and only then talks to the cloud.
:func:`check_cluster_config` runs those two steps, then this project's security
and sizing rules. It never contacts a cloud.

Usage::

    python -m search.cluster_config cluster.yaml
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path
from typing import Any

import yaml

# CIDR blocks that match every address.
OPEN_CIDRS = ("0.0.0.0/0", "::/0")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
TOKEN_PATH_VARIABLE = "RAY_AUTH_TOKEN_PATH"
DEFAULT_TOKEN_PATH = "~/.ray/auth_token"


def load_cluster_config(path: str | Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def validate_with_ray(config: dict[str, Any]) -> dict[str, Any]:
    """Fill in the provider defaults and validate against Ray's schema, as ``ray up`` does.

    Returns:
        The prepared config, as ``ray up`` would hand it to the node provider.

    Raises:
        jsonschema.ValidationError: If the config does not match ray-schema.json.
        ValueError: If Ray's own checks reject it.
    """
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(config)
    validate_config(prepared)
    return prepared


def check_cluster_config(config: dict[str, Any]) -> list[str]:
    """Validate the config as ``ray up`` does, then return every violation of this project's rules.

    The rules: no ingress rule is open to every address. On AWS, every node type
    names a security group made beforehand, because the group that ``ray up`` makes
    opens SSH to 0.0.0.0/0. The dashboard listens on loopback, and the worker counts fit
    together. Every ``ray start`` runs with token authentication, and the token
    file is copied to every node.
    """
    prepared = validate_with_ray(config)
    return [
        *_open_cidr_problems(config),
        *_security_group_problems(prepared),
        *_dashboard_problems(prepared),
        *_worker_count_problems(prepared),
        *_token_problems(prepared),
    ]


def _open_cidr_problems(config: dict[str, Any]) -> list[str]:
    problems = []
    for path, value in _walk(config):
        if isinstance(value, str) and value.strip() in OPEN_CIDRS:
            problems.append(f"{path}: '{value}' opens the rule to every address; allow only your own network.")
    return problems


def _security_group_problems(config: dict[str, Any]) -> list[str]:
    # Only the AWS provider makes a security group; GCP and local clusters use the
    # firewall rules of their network or hosts, which a cluster config does not contain.
    if config["provider"]["type"] != "aws":
        return []
    problems = []
    for name, node_type in config["available_node_types"].items():
        if not node_type["node_config"].get("SecurityGroupIds"):
            problems.append(
                f"available_node_types.{name}.node_config.SecurityGroupIds: missing, so `ray up` creates "
                "a security group that opens SSH to 0.0.0.0/0; set the id of a group you made."
            )
    return problems


def _dashboard_problems(config: dict[str, Any]) -> list[str]:
    problems = []
    for index, command in enumerate(config["head_start_ray_commands"]):
        for host in re.findall(r"--dashboard-host[= ](\S+)", command):
            if host not in LOOPBACK_HOSTS:
                problems.append(
                    f"head_start_ray_commands[{index}]: --dashboard-host={host} exposes the dashboard and "
                    "Jobs API; use 127.0.0.1 and reach them through `ray dashboard cluster.yaml`."
                )
        if "ray start" in command and "--dashboard-host" not in command:
            problems.append(
                f"head_start_ray_commands[{index}]: no --dashboard-host; set --dashboard-host=127.0.0.1 "
                "so the dashboard listens on loopback whatever Ray's default."
            )
    return problems


def _worker_count_problems(config: dict[str, Any]) -> list[str]:
    problems = []
    cluster_max = config["max_workers"]
    head = config["head_node_type"]
    worker_types = {name: node for name, node in config["available_node_types"].items() if name != head}
    if not worker_types:
        problems.append("available_node_types: no worker node type besides the head node type.")

    for name, node_type in worker_types.items():
        low, high = node_type.get("min_workers", 0), node_type.get("max_workers", cluster_max)
        where = f"available_node_types.{name}"
        if low > high:
            problems.append(f"{where}: min_workers={low} exceeds max_workers={high}.")
        if high < 1:
            problems.append(f"{where}: max_workers={high}, so the autoscaler can never add this worker type.")
        if high > cluster_max:
            problems.append(f"{where}: max_workers={high} exceeds the cluster's max_workers={cluster_max}.")

    total_min = sum(node.get("min_workers", 0) for node in worker_types.values())
    if total_min > cluster_max:
        problems.append(f"max_workers: {cluster_max} is below the sum of the worker types' min_workers, {total_min}.")
    return problems


def _token_problems(config: dict[str, Any]) -> list[str]:
    problems = []
    token_paths = set()
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        starts = [(index, command) for index, command in enumerate(config[key]) if "ray start" in command]
        if not starts:
            problems.append(f"{key}: no `ray start` command.")
        for index, command in starts:
            settings = _shell_assignments(command.split("ray start", 1)[0])
            if settings.get("RAY_AUTH_MODE") != "token":
                problems.append(f"{key}[{index}]: `ray start` runs without RAY_AUTH_MODE=token.")
            token_paths.add(_normalize_home(settings.get(TOKEN_PATH_VARIABLE, DEFAULT_TOKEN_PATH)))

    mounted = {_normalize_home(remote) for remote in config.get("file_mounts", {})}
    for token_path in sorted(token_paths - mounted):
        problems.append(
            f"file_mounts: the token file {token_path} that `ray start` reads is not copied to the nodes; "
            f"add '{token_path}: ~/.ray/auth_token' after `ray get-auth-token --generate`."
        )
    return problems


def _shell_assignments(script: str) -> dict[str, str]:
    """Return the NAME=value words of a shell script, as a later command in it would see them."""
    assignments = {}
    for word in shlex.split(script.replace(";", " ; ")):
        match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", word)
        if match:
            assignments[match.group(1)] = match.group(2)
    return assignments


def _normalize_home(path: str) -> str:
    return re.sub(r"^(\$HOME|\$\{HOME\})", "~", path.rstrip("/"))


def _walk(value: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [pair for key, item in value.items() for pair in _walk(item, f"{path}.{key}" if path else str(key))]
    if isinstance(value, list):
        return [pair for index, item in enumerate(value) for pair in _walk(item, f"{path}[{index}]")]
    return [(path, value)]


def main(argv: list[str] | None = None) -> int:
    """Check the cluster config files named on the command line; exit 1 if any has a problem."""
    paths = (argv if argv is not None else sys.argv[1:]) or ["cluster.yaml"]
    failed = False
    for path in paths:
        problems = check_cluster_config(load_cluster_config(path))
        for problem in problems:
            print(f"{path}: {problem}", file=sys.stderr)
        failed = failed or bool(problems)
        if not problems:
            print(f"{path}: valid for `ray up`, and no problem found.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
