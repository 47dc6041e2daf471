"""`make audit`: known vulnerabilities of the locked dependencies, with pip-audit.

pip-audit asks PyPI's JSON API for each pinned package. Where that service cannot be reached
(offline machines, a registry mirror that serves only the package index), the packages it could
not look up are listed and counted instead of being passed over in silence. Exit status: 1 when a
vulnerability is found, 0 otherwise (with the count of packages that could not be audited).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

LOCK = Path(__file__).resolve().parents[2] / "requirements.lock"


def main() -> int:
    run = subprocess.run(
        [
            sys.executable, "-m", "pip_audit", "-r", str(LOCK), "--no-deps", "--disable-pip",
            "--progress-spinner", "off", "-f", "json",
        ],
        capture_output=True,
        text=True,
    )  # fmt: skip
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        print(run.stderr.strip() or run.stdout.strip(), file=sys.stderr)
        print("pip-audit could not run: no vulnerability database was consulted", file=sys.stderr)
        return 1
    audited, skipped, vulnerable = [], [], []
    for dep in report.get("dependencies", []):
        if dep.get("skip_reason"):
            skipped.append(dep["name"])
        else:
            audited.append(dep["name"])
            vulnerable += [(dep["name"], dep["version"], v["id"]) for v in dep.get("vulns", [])]
    for name, version, vuln in vulnerable:
        print(f"VULNERABLE {name} {version}: {vuln}")
    print(f"audited {len(audited)} of {len(audited) + len(skipped)} locked packages")
    if skipped:
        print(
            f"the vulnerability database could not be reached for {len(skipped)} package(s); "
            f"they are NOT audited: {', '.join(sorted(skipped))}"
        )
    return 1 if vulnerable else 0


if __name__ == "__main__":
    raise SystemExit(main())
