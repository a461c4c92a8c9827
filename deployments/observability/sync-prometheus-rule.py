"""Write the Kubernetes PrometheusRule from prometheus/alerts.yml, the rules' one source.

    python deployments/observability/sync-prometheus-rule.py          # write it
    python deployments/observability/sync-prometheus-rule.py --check  # exit 1 if it differs

The rules' text is copied as it stands (comments and layout included) under `spec:`;
tests/deployments/test_observability.py checks the two carry the same groups.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ALERTS = HERE / "prometheus" / "alerts.yml"
RULE = HERE.parent / "kubernetes" / "components" / "observability" / "prometheus-rule.yaml"

HEADER = """\
# GENERATED from deployments/observability/prometheus/alerts.yml by
# deployments/observability/sync-prometheus-rule.py: edit alerts.yml, then run the script.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: ecommerce-mesh
  labels:
    app.kubernetes.io/name: ecommerce-mesh
    app.kubernetes.io/part-of: ecommerce-mesh
spec:
"""


def rendered() -> str:
    lines = ALERTS.read_text().splitlines()
    # From `groups:` on: the file's own header speaks of the file.
    start = next(i for i, line in enumerate(lines) if line.startswith("groups:"))
    body = [f"  {line}" if line else "" for line in lines[start:]]
    return HEADER + "\n".join(body) + "\n"


def main(argv: list[str]) -> int:
    text = rendered()
    if "--check" in argv:
        if not RULE.is_file() or RULE.read_text() != text:
            print(f"{RULE} is out of date: run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    RULE.write_text(text)
    print(f"wrote {RULE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
