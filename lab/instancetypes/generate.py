#!/usr/bin/env python3
"""Generate the lab's common-instancetypes bundles from KubeVirt's own data.

virt-operator deploys the two bundles it embeds (pkg/virt-operator/resource/generate/components/data/
common-instancetypes/) and stamps each object with its operator metadata (apply/reconcile.go
injectOperatorMetadata). This script reads those bundles from a KubeVirt checkout or the shared
reference copy and writes one JSON file per bundle here, with the same metadata, so that `labctl up`
(lab/labkit/bootstrap.py) can apply them without PyYAML and without reading the source at run time.

    .venv/bin/python lab/instancetypes/generate.py [SOURCE_DIR]

SOURCE_DIR defaults to ../shared/upstream/kubevirt-v1.8.4/common-instancetypes (relative to the
checkout). The output is committed; nothing reads SOURCE_DIR at run time or in tests.
"""
import hashlib
import json
import sys
from pathlib import Path

import yaml

KUBEVIRT_VERSION = "v1.8.4"
REGISTRY = "quay.io/kubevirt"
HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = HERE.parents[2] / "shared" / "upstream" / f"kubevirt-{KUBEVIRT_VERSION}" / "common-instancetypes"
BUNDLES = ("common-clusterinstancetypes-bundle", "common-clusterpreferences-bundle")
VERSION_LABEL = "instancetype.kubevirt.io/common-instancetypes-version"


def operator_metadata(obj, identifier):
    """injectOperatorMetadata(kv, meta, version, registry, id, true) with a default KubeVirt CR (generation 1)."""
    meta = obj.setdefault("metadata", {})
    labels = meta.setdefault("labels", {})
    labels["app.kubernetes.io/component"] = "compute"
    labels["app.kubernetes.io/managed-by"] = "virt-operator"
    ann = meta.setdefault("annotations", {})
    ann["kubevirt.io/install-strategy-version"] = KUBEVIRT_VERSION
    ann["kubevirt.io/install-strategy-registry"] = REGISTRY
    ann["kubevirt.io/install-strategy-identifier"] = identifier
    ann["kubevirt.io/generation"] = "1"
    return obj


def generate(source):
    # virt-operator's identifier is a hash of its install strategy; the lab's is one of the version
    identifier = hashlib.sha1(f"{REGISTRY}/{KUBEVIRT_VERSION}".encode()).hexdigest()
    written = []
    for bundle in BUNDLES:
        src = source / f"{bundle}.yaml"
        items = [operator_metadata(doc, identifier) for doc in yaml.safe_load_all(src.read_text()) if doc]
        versions = sorted({(d["metadata"].get("labels") or {}).get(VERSION_LABEL, "") for d in items})
        out = HERE / f"{bundle}.json"
        body = {"apiVersion": "v1", "kind": "List",
                "source": {"kubevirt": KUBEVIRT_VERSION, "common-instancetypes": ",".join(versions),
                           "file": f"kubevirt {KUBEVIRT_VERSION} pkg/virt-operator/resource/generate/components/"
                                   f"data/common-instancetypes/{bundle}.yaml",
                           "generator": "lab/instancetypes/generate.py"},
                "items": items}
        out.write_text(json.dumps(body, indent=1, sort_keys=True) + "\n")
        written.append((out, len(items), versions))
    return written


def main(argv):
    source = Path(argv[1]) if len(argv) > 1 else DEFAULT_SOURCE
    for out, count, versions in generate(source):
        print(f"{out.relative_to(HERE.parents[1])}: {count} objects, common-instancetypes {', '.join(versions)}")


if __name__ == "__main__":
    main(sys.argv)
