#!/usr/bin/env python3
"""Runs real Helm (Helm 4's Go SDK, through the PyPI package helm-python-sdk)
on the chart, for the tests and for regenerating examples/controller/.

  chart.py lint [VALUES.yaml]              lint --strict; prints the report as JSON,
                                           exits 1 on warnings or errors
  chart.py template [--hooks] [VALUES.yaml]
                                           prints every rendered object in install
                                           order; hooks (the uninstall Job) only
                                           with --hooks
  chart.py validate VALUES.yaml            schema validation only; exits 1 with
                                           Helm's message on a bad value
  chart.py session KUBECONFIG              install, upgrade and uninstall against a
                                           cluster, driven by JSON lines on stdin
                                           ({"op": "install"|"upgrade", "values": {...}}
                                           or {"op": "uninstall"}), one JSON answer
                                           line each. Releases are kept in Secrets
                                           of the release namespace, as by the
                                           helm CLI (its "secret" storage driver).
"""

import json
import os
import sys

import helm_python as helm
import yaml

CHART = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "chart")
RELEASE = "tailscale-svc-lb"
# Helm's install order (pkg/release/util/kind_sorter.go), for the kinds the
# chart has: objects print in the order `helm install` creates them.
KIND_ORDER = ["Namespace", "PodDisruptionBudget", "ServiceAccount", "Secret", "ConfigMap",
              "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Service",
              "Deployment", "Job", "ServiceMonitor"]


def documents(manifests, hooks):
    """(rank, name, path, text) of every rendered object, in install order;
    hook objects only with `hooks`."""
    docs = []
    for path in sorted(manifests):
        if path.endswith("NOTES.txt"):
            continue
        for text in manifests[path].split("\n---"):
            text = text.strip().removeprefix("---").strip()
            body = yaml.safe_load(text) if text else None
            if not body:
                continue
            if not hooks and "helm.sh/hook" in (body["metadata"].get("annotations") or {}):
                continue
            kind = body.get("kind", "")
            rank = KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)
            docs.append((rank, body["metadata"]["name"], path, text))
    return sorted(docs)


def values_of(args):
    if not args:
        return None
    with open(args[0]) as f:
        return yaml.safe_load(f) or {}


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    command, rest = argv[1], argv[2:]
    if command == "lint":
        report = helm.lint(CHART, values_of(rest), strict=True)
        print(json.dumps(report, indent=2))
        bad = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
        return 1 if bad else 0
    chart = helm.Chart.load(CHART)
    if command == "validate":
        try:
            chart.validate_schema(values_of(rest))
        except helm.HelmError as e:
            print(e, file=sys.stderr)
            return 1
        return 0
    if command == "template":
        hooks = "--hooks" in rest
        rest = [a for a in rest if a != "--hooks"]
        try:
            manifests = chart.render(values_of(rest), name=RELEASE, namespace="default",
                                     is_install=True)
        except helm.HelmError as e:
            print(e, file=sys.stderr)
            return 1
        for _, _, path, text in documents(manifests, hooks):
            print(f"---\n# Source: {path}\n{text}")
        return 0
    if command == "session":
        return session(rest[0])
    print(__doc__, file=sys.stderr)
    return 2


def session(kubeconfig):
    config = helm.Config(kubeconfig_path=kubeconfig, namespace="default",
                         storage_driver="secret")
    for line in sys.stdin:
        request = json.loads(line)
        op = request["op"]
        try:
            if op == "install":
                release = config.install(CHART, RELEASE, request.get("values"),
                                         namespace="default", timeout=120)
            elif op == "upgrade":
                release = config.upgrade(CHART, RELEASE, request.get("values"),
                                         namespace="default", timeout=120)
            elif op == "uninstall":
                release = config.uninstall(RELEASE, timeout=300)
            else:
                raise ValueError(f"unknown op {op}")
            answer = {"ok": True, "revision": (release or {}).get("revision")}
        except Exception as e:  # Helm's errors are reported, not raised
            answer = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
