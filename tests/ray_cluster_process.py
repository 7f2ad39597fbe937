"""A multi-node Ray cluster on this machine, run in its own process and driven through stdin.

Started by tests/test_cluster_runs.py with ``python tests/ray_cluster_process.py N_NODES``.
It starts a head node and N_NODES - 1 worker nodes with ``ray.cluster_utils.Cluster``,
each with 1 CPU and a small object store, all listening on 127.0.0.1, and prints one
JSON line: ``{"address": ..., "head": NODE_ID, "workers": [NODE_ID, ...]}``. Then it
reads commands, one per line, and replies to each with one JSON line:

- ``remove NODE_ID`` stops that worker node's processes and prints ``{"removed": NODE_ID}``.
- ``stop``, or the end of stdin, shuts the cluster down and exits.

Running the cluster in its own process keeps Ray's process-wide state (the
authentication mode, the node address) out of the pytest process.
"""

from __future__ import annotations

import json
import os
import socket
import sys

# Ray reads this at import: without it, nodes started for 127.0.0.1 get the
# machine's routable address instead.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

from ray.cluster_utils import Cluster  # noqa: E402

OBJECT_STORE_BYTES = 80 * 1024 * 1024  # Ray's default is 30% of RAM per node


def main() -> int:
    n_nodes = int(sys.argv[1])
    temp_root = os.environ["RAY_TMPDIR"]
    # Cluster writes the head address to RAY_TMPDIR/ray/ray_current_cluster.
    os.makedirs(os.path.join(temp_root, "ray"), exist_ok=True)
    node_args = {"num_cpus": 1, "object_store_memory": OBJECT_STORE_BYTES, "node_ip_address": "127.0.0.1"}

    # Nodes on one machine get their own temp dirs, as separate machines would:
    # runtime environments are unpacked there, per node.
    # Ray's fixed default ports (8265, 52365) would clash with other Ray instances on this machine.
    head_args = {
        **node_args,
        "include_dashboard": False,
        "dashboard_port": _free_port(),
        "dashboard_agent_listen_port": _free_port(),
        "temp_dir": os.path.join(temp_root, "head"),
    }
    cluster = Cluster(initialize_head=True, head_node_args=head_args)
    workers = {}
    for index in range(1, n_nodes):
        node = cluster.add_node(**node_args, temp_dir=os.path.join(temp_root, f"node{index}"))
        workers[node.node_id] = node

    _print({"address": cluster.address, "head": cluster.head_node.node_id, "workers": list(workers)})
    try:
        for line in sys.stdin:
            command, *arguments = line.split()
            if command == "remove":
                cluster.remove_node(workers.pop(arguments[0]))
                _print({"removed": arguments[0]})
            elif command == "stop":
                break
    finally:
        cluster.shutdown()
    return 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _print(message: dict) -> None:
    print(json.dumps(message), flush=True)


if __name__ == "__main__":
    sys.exit(main())
