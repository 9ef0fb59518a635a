"""KubeVirt's feature gates, read from the lab's KubeVirt CR (kubevirt/kubevirt) as virt-config does.

pkg/virt-config/feature-gates.go isFeatureGateEnabled (v1.8.4): a GA gate is always on; any other gate is
on only when listed in spec.configuration.developerConfiguration.featureGates (Beta gates such as
Snapshot and VMExport are off by default). The lab creates its KubeVirt CR once with the day-two gates
Snapshot and VMExport listed (as an install that uses snapshots, clones and exports does); after that the
CR is the user's: removing a gate from it turns the feature off, as on a cluster.
The alpha gates the webhooks refuse fields of stay in webhooks.FEATURE_GATES (never on in the lab).
"""
from .kube import KUBEVIRT
from .util import dig

NAMESPACE = "kubevirt"
NAME = "kubevirt"
DEFAULT_GATES = ["Snapshot", "VMExport"]


def kubevirt_cr():
    """The KubeVirt CR the lab creates when there is none."""
    return {"apiVersion": KUBEVIRT.api_version, "kind": "KubeVirt",
            "metadata": {"name": NAME, "namespace": NAMESPACE},
            "spec": {"configuration": {"developerConfiguration": {"featureGates": list(DEFAULT_GATES)}}}}


def gates_of(cr):
    return list(dig(cr, "spec", "configuration", "developerConfiguration", "featureGates", default=[]) or [])


def enabled(sim, gate):
    """Is `gate` on in the KubeVirt CR (the informer's copy)?"""
    cr = sim.cache.kubevirts.get_ns(NAMESPACE, NAME)
    return gate in gates_of(cr)


async def ensure_cr(sim):
    """Create the KubeVirt CR once; a CR that exists is left as its owner made it."""
    if await sim.kube.get_or_none(KUBEVIRT, NAME, NAMESPACE) is None:
        await sim.kube.create(KUBEVIRT, kubevirt_cr(), NAMESPACE)
