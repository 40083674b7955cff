"""deploy/: the Dockerfile lints clean (hadolint) and keeps its promises, compose runs two
replicas on one store, and the Kubernetes manifests validate (Kubernetes 1.31, strict)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from bucketvault.testing.emulators import on_ci

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES_VERSION = "1.31.0"


def tool(name: str) -> Path:
    """A dev tool from this venv (make venv installs it); CI fails without it."""
    found = Path(sys.executable).parent / name
    if found.exists():
        return found
    on_path = shutil.which(name)
    if on_path:
        return Path(on_path)
    if on_ci(os.environ):
        pytest.fail(f"{name} is not installed (CI=true)", pytrace=False)
    pytest.skip(f"{name} is not installed")


# -- Dockerfile ------------------------------------------------------------------------------

DOCKERFILE = (DEPLOY / "Dockerfile").read_text()


def instructions(stage: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of one stage, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    lines = [ln.strip() for ln in joined.splitlines() if ln.strip() and not ln.startswith("#")]
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for line in lines:
        op, _, rest = line.partition(" ")
        if op == "FROM":
            current = stages.setdefault(rest.split(" AS ")[-1].strip(), [])
        current.append((op, rest))
    return stages[stage]


def test_dockerfile_passes_hadolint() -> None:
    done = subprocess.run(
        [tool("hadolint"), "--failure-threshold", "info", DEPLOY / "Dockerfile"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_runtime_is_non_root_read_only_friendly_and_health_checked() -> None:
    runtime = instructions("runtime")
    ops = dict(runtime)
    assert "python:3.11-slim" in DOCKERFILE and ops["FROM"] == "${PYTHON_IMAGE} AS runtime"
    assert ops["USER"] == "10001:10001"  # numeric: runAsNonRoot can check it
    env = ops["ENV"]
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "BUCKETVAULT_DATA_DIR=/var/lib/bucketvault" in env
    assert ops["VOLUME"] == '["/var/lib/bucketvault"]'
    assert ops["EXPOSE"] == "50051"
    assert ops["HEALTHCHECK"].endswith('CMD ["bucketvault", "health", "--timeout", "3"]')
    assert ops["ENTRYPOINT"] == '["bucketvault"]'
    assert ops["CMD"] == '["serve", "--listen", "0.0.0.0:50051"]'
    # The build happens in the builder; the runtime only copies its venv in.
    assert "pip wheel" in dict(instructions("builder"))["RUN"]
    assert not [a for op, a in runtime if op == "RUN" and "pip" in a]


def test_dockerignore_keeps_make_proto_output_out_of_the_context() -> None:
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    assert "src/bucketvault/v1/" in ignore


# -- compose ---------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def replicas() -> dict[str, dict[str, Any]]:
    services = compose()["services"]
    return {n: s for n, s in services.items() if n.startswith("bucketvault")}


def test_compose_runs_two_replicas_on_one_postgres_store() -> None:
    services = compose()["services"]
    assert services["postgres"]["image"].startswith("postgres:")
    bv = replicas()
    assert len(bv) == 2
    stores = {s["environment"]["BUCKETVAULT_STORE"] for s in bv.values()}
    assert len(stores) == 1
    assert stores.pop().startswith(("postgres://", "postgresql://"))
    writers = [s["environment"]["BUCKETVAULT_AUDIT_WRITER_ID"] for s in bv.values()]
    assert len(set(writers)) == 2 and all(writers)
    for service in bv.values():
        assert service["depends_on"]["postgres"] == {"condition": "service_healthy"}


def test_compose_replicas_mount_the_kek_read_only_and_opt_into_plaintext_explicitly() -> None:
    for name, service in replicas().items():
        env = service["environment"]
        kek = env["BUCKETVAULT_KEK"].removeprefix("file://")
        mounts = {m["target"]: m for m in service["volumes"]}
        assert mounts[kek]["read_only"] is True, name
        assert mounts[kek]["type"] == "bind"
        # No TLS files here, so a 0.0.0.0 listener needs the explicit flag (config.py).
        assert "BUCKETVAULT_TLS_CERT_FILE" not in env
        assert env["BUCKETVAULT_ALLOW_PLAINTEXT"] == "true"
        assert all(p.startswith("127.0.0.1:") for p in service["ports"]), name
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"]
        assert mounts["/var/lib/bucketvault"]["type"] == "volume"


def test_compose_config_accepts_the_file() -> None:
    """`docker compose config` needs no daemon; the plugin is optional (no make target)."""
    docker = shutil.which("docker")
    probe = [docker or "docker", "compose", "version"]
    if docker is None or subprocess.run(probe, capture_output=True, check=False).returncode:
        pytest.skip("docker compose is not installed")
    done = subprocess.run(
        [docker, "compose", "-f", DEPLOY / "compose.yaml", "config", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


# -- Kubernetes ------------------------------------------------------------------------------

MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))


def resources() -> list[dict[str, Any]]:
    return [
        doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc is not None
    ]


def by_kind(kind: str) -> dict[str, Any]:
    (found,) = [r for r in resources() if r["kind"] == kind]
    return found


@pytest.mark.parametrize(
    "resource", resources(), ids=lambda r: f"{r['kind']}/{r['metadata']['name']}"
)
def test_manifest_validates_strictly(resource: dict[str, Any]) -> None:
    kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def test_manifests_hold_every_kind_a_deployment_needs() -> None:
    kinds = {r["kind"] for r in resources()}
    assert {"Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"} <= kinds


def test_deployment_is_locked_down() -> None:
    spec = by_kind("Deployment")["spec"]
    assert spec["replicas"] >= 2
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the image's USER
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"] + pod.get("initContainers", []):
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True, container["name"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    (server,) = pod["containers"]
    # TCP probes: the kubelet's grpc probe cannot speak TLS, and the listener serves TLS.
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert server[probe]["tcpSocket"] == {"port": 50051}
    secrets = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert {"bucketvault-kek", "bucketvault-policy", "bucketvault-tls"} <= secrets
    mounts = {m["name"]: m for m in server["volumeMounts"]}
    for name in ("kek", "policy", "tls"):
        assert mounts[name]["readOnly"] is True
    # Nothing but volumes is writable.
    assert {m["mountPath"] for m in server["volumeMounts"] if not m.get("readOnly")} == {
        "/var/lib/bucketvault",
        "/var/log/bucketvault",
    }


def test_config_map_serves_tls_on_the_files_the_tls_secret_is_mounted_at() -> None:
    data = by_kind("ConfigMap")["data"]
    assert "BUCKETVAULT_ALLOW_PLAINTEXT" not in data
    server = by_kind("Deployment")["spec"]["template"]["spec"]["containers"][0]
    tls_dir = {m["name"]: m["mountPath"] for m in server["volumeMounts"]}["tls"]
    assert data["BUCKETVAULT_TLS_CERT_FILE"] == f"{tls_dir}/tls.crt"
    assert data["BUCKETVAULT_TLS_KEY_FILE"] == f"{tls_dir}/tls.key"


def test_disruption_budget_and_network_policy_select_the_pods() -> None:
    labels = by_kind("Deployment")["spec"]["template"]["metadata"]["labels"]
    pdb = by_kind("PodDisruptionBudget")["spec"]
    assert pdb["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["minAvailable"] < by_kind("Deployment")["spec"]["replicas"]
    policy = by_kind("NetworkPolicy")["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
