"""Render every overlay of infra/k8s with `kubectl kustomize` and validate it offline.

Each overlay's objects go to <out>/<overlay>.yaml (checkov reads them there, `make validate-k8s`).
The core Kubernetes objects are validated by kubernetes-validate --strict against the API
schemas it bundles (unknown fields fail). The operators' custom resources have no schema there:
they are listed below with the reason they are skipped, and any other kind fails the run.
tests/infra/test_k8s_manifests.py checks the fields of those custom resources that matter.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent

# (apiVersion, kind) -> why kubernetes-validate does not check it
SKIPPED_KINDS = {
    ("postgresql.cnpg.io/v1", "Cluster"): "CloudNativePG CRD, schema not bundled",
    ("postgresql.cnpg.io/v1", "ScheduledBackup"): "CloudNativePG CRD, schema not bundled",
    ("postgresql.cnpg.io/v1", "Database"): "CloudNativePG CRD, schema not bundled",
    (
        "rabbitmq.com/v1beta1",
        "RabbitmqCluster",
    ): "RabbitMQ Cluster Operator CRD, schema not bundled",
}


def render(overlay: Path) -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        sys.exit("kubectl is not on PATH: `kubectl kustomize` renders the overlays")
    return subprocess.run(
        [kubectl, "kustomize", str(overlay)], check=True, capture_output=True, text=True
    ).stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory of the rendered files")
    parser.add_argument("--kubernetes-version", required=True, help="e.g. 1.33.0")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for stale in args.out.glob("*.yaml"):  # an overlay removed since the last run
        stale.unlink()
    validate = Path(sys.executable).with_name("kubernetes-validate")
    failed = False
    for overlay in sorted((HERE / "overlays").iterdir()):
        rendered = render(overlay)
        (args.out / f"{overlay.name}.yaml").write_text(rendered, encoding="utf-8")
        core, skipped = [], []
        for doc in yaml.safe_load_all(rendered):
            key = (doc["apiVersion"], doc["kind"])
            if key in SKIPPED_KINDS:
                skipped.append(f"{doc['kind']}/{doc['metadata']['name']}")
            elif "." in doc["apiVersion"].split("/")[0] and not doc["apiVersion"].startswith(
                ("apps/", "batch/", "policy/", "autoscaling/", "networking.k8s.io/")
            ):
                print(f"{overlay.name}: {key} is neither core nor a listed CRD", file=sys.stderr)
                failed = True
            else:
                core.append(doc)
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            yaml.safe_dump_all(core, f)
        result = subprocess.run(
            [str(validate), "--strict", "--quiet", "-k", args.kubernetes_version, f.name],
            capture_output=True,
            text=True,
        )
        Path(f.name).unlink()
        if result.returncode != 0 or result.stdout.strip() or result.stderr.strip():
            print(result.stdout + result.stderr, file=sys.stderr)
            failed = True
        print(
            f"{overlay.name}: {len(core)} objects valid (Kubernetes {args.kubernetes_version},"
            f" strict); CRDs not schema-checked: {', '.join(skipped)}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
