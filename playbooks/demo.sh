#!/usr/bin/env bash
# `make demo`: bring the lab up, provision three VMs (a web VM on the pod network, a VM with a
# Multus second NIC, a VM booting a DataVolume), write a health report, and leave the lab running.
# Usage: playbooks/demo.sh   (from anywhere; uses the repository's .venv and lab/)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PY=$REPO/.venv/bin/python
export PATH="$REPO/.venv/bin:$PATH"
NAMESPACE=${DEMO_NAMESPACE:-demo}
REPORT_DIR=${DEMO_REPORT_DIR:-$REPO/reports/demo}
t0=$SECONDS

# The collection, importable as virtops.kubevirt from this checkout.
COLL=$REPO/.cache/collections
mkdir -p "$COLL/ansible_collections/virtops"
[ -e "$COLL/ansible_collections/virtops/kubevirt" ] || ln -s "$REPO" "$COLL/ansible_collections/virtops/kubevirt"
export ANSIBLE_COLLECTIONS_PATH=$COLL
export ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false

echo "== lab"
lab_args=()
command -v prometheus >/dev/null && lab_args+=(--prometheus)   # metrics in the report when Prometheus is installed
$PY lab/labctl up "${lab_args[@]}"
KUBECONFIG=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["kubeconfig"])' lab/.state/lab.json)
export KUBECONFIG
PROM_URL=$($PY -c 'import json,sys; print((json.load(open(sys.argv[1])).get("prometheus") or {}).get("url", ""))' lab/.state/lab.json)

echo "== namespace $NAMESPACE"
$PY - "$NAMESPACE" <<'PYEOF'
import sys
from kubernetes import client, config
from kubernetes.client.rest import ApiException
config.load_kube_config()
try:
    client.CoreV1Api().create_namespace({"metadata": {"name": sys.argv[1]}})
    print("created namespace %s" % sys.argv[1])
except ApiException as exc:
    if exc.status != 409:
        raise
    print("namespace %s exists" % sys.argv[1])
PYEOF

# An SSH key for web-1 (a real guest), kept in the checkout's .cache, never in ~/.ssh.
DEMO_DIR=$REPO/.cache/demo
mkdir -p "$DEMO_DIR"
[ -f "$DEMO_DIR/id_ed25519" ] || ssh-keygen -q -t ed25519 -N "" -C virtops-demo -f "$DEMO_DIR/id_ed25519"

echo "== provision (playbooks/provision.yml -e @playbooks/vars/demo.yml)"
ansible-playbook playbooks/provision.yml -e @playbooks/vars/demo.yml \
  -e "vm_provision_namespace=$NAMESPACE" -e "demo_ssh_public_key='$(cat "$DEMO_DIR/id_ed25519.pub")'"
t_prov=$SECONDS

echo "== SSH to web-1 through KubeVirt's port-forward (the inventory plugin's access: auto; no Service, no route)"
cat > "$DEMO_DIR/demo.kubevirt.yml" <<EOF
plugin: virtops.kubevirt.kubevirt
namespaces: [$NAMESPACE]
compose:
  ansible_user: "'fedora'"
  ansible_python_interpreter: "'/usr/bin/python3'"
EOF
ANSIBLE_PRIVATE_KEY_FILE=$DEMO_DIR/id_ed25519 ANSIBLE_HOST_KEY_CHECKING=false ANSIBLE_PIPELINING=true \
  ANSIBLE_SSH_EXTRA_ARGS="-o UserKnownHostsFile=$DEMO_DIR/known_hosts" ANSIBLE_SSH_CONTROL_PATH_DIR=$DEMO_DIR/cp \
  ansible -i "$DEMO_DIR/demo.kubevirt.yml" "$NAMESPACE-web-1" -m ansible.builtin.command -a "uname -sr"

echo "== monitor (playbooks/monitor.yml -e @playbooks/vars/demo.yml)"
ansible-playbook playbooks/monitor.yml -e @playbooks/vars/demo.yml \
  -e "vm_monitor_namespace=$NAMESPACE" -e "vm_monitor_report_dir=$REPORT_DIR" \
  -e "vm_monitor_prometheus_url=$PROM_URL"

echo
echo "== demo done in $((SECONDS - t0))s (provision $((t_prov - t0))s, monitor $((SECONDS - t_prov))s)"
$PY - "$REPORT_DIR/vm-health.json" <<'PYEOF'
import json, sys
report = json.load(open(sys.argv[1]))
t = report["totals"]
print("%d VMs, %d healthy, %d unhealthy" % (t["vms"], t["healthy"], t["unhealthy"]))
for vm in report["vms"]:
    print("  %-8s %-8s %-8s node %-14s IPs %s" % (vm["name"], vm["status"], vm["severity"], vm.get("node") or "-",
                                                ", ".join(vm.get("ip_addresses") or []) or "-"))
PYEOF
echo "report: $REPORT_DIR/vm-health.html (also .md and .json)"
echo "look:   eval \"\$(lab/labctl env)\"; kubectl get vm,vmi,dv,net-attach-def -n $NAMESPACE"
echo "stop:   make lab-down"
