"""Validate Kubernetes manifests against the API schemas, offline.

Usage: k8s_validate.py --k8s-version 1.30.0 [--k8s-version ...] FILE...

Every YAML document in every FILE is checked with kubernetes-validate in strict mode (unknown fields are
errors, so a misspelt `readinessProbe` fails instead of being silently dropped by the API server).
Documents without a built-in schema are reported and skipped, never passed silently:
  - kustomize's own files (Kustomization, Component) are build inputs, not API objects;
  - custom resources (KEDA's ScaledObject) have no schema in kubernetes-validate; the invariants in
    k8s_invariants.py check what matters about them, and their operator validates them on apply.
Exit status 1 if any document is invalid.
"""

import argparse
import sys

import kubernetes_validate
import yaml

BUILD_INPUTS = {"kustomize.config.k8s.io"}


def group_of(api_version):
    return api_version.split("/")[0] if "/" in api_version else ""


def validate_file(path, versions):
    """Returns (checked, skipped, errors) for one file, printing one line per document."""
    checked = skipped = errors = 0
    with open(path, encoding="utf-8") as f:
        try:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
        except yaml.YAMLError as e:
            print(f"  FAIL {path}: not valid YAML: {e}")
            return 0, 0, 1
    for doc in docs:
        if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
            print(f"  FAIL {path}: a document without apiVersion/kind")
            errors += 1
            continue
        meta_name = (doc.get("metadata") or {}).get("name")
        name = f"{doc['kind']}/{meta_name}" if meta_name else doc["kind"]
        if group_of(doc["apiVersion"]) in BUILD_INPUTS:
            print(f"  skip {path}: {name} is a kustomize build input, not an API object")
            skipped += 1
            continue
        for version in versions:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                print(
                    f"  skip {path}: {name} ({doc['apiVersion']}) is a custom resource without a "
                    f"built-in schema; its operator validates it on apply"
                )
                skipped += 1
                break
            except kubernetes_validate.ValidationError as e:
                where = "/".join(str(p) for p in e.path) or "(root)"
                print(f"  FAIL {path}: {name} against Kubernetes {version}: at {where}: {e.message}")
                errors += 1
                break
        else:
            print(f"  ok   {path}: {name} (Kubernetes {', '.join(versions)})")
            checked += 1
    return checked, skipped, errors


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k8s-version", action="append", required=True)
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    totals = [0, 0, 0]
    for path in args.files:
        for i, n in enumerate(validate_file(path, args.k8s_version)):
            totals[i] += n
    checked, skipped, errors = totals
    print(f"schema validation: {checked} valid, {skipped} skipped, {errors} invalid")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
