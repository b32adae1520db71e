#!/usr/bin/env bash
# Run playbooks/site.yml twice on a local control plane (etcd, kube-apiserver,
# controller-manager, scheduler and kwok on 127.0.0.1) with the stand-in charts, then print
# what it configured. The second run must report changed=0.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
kubeconfig=$(python3 tests/cluster/localcluster.py start | tail -n 1)
bin_dir=$(bash tests/cluster/build.sh 2> /dev/null | tail -n 1)
collections=$(python3 -c 'import sys; sys.path.insert(0, "tests"); import paths; print(paths.COLLECTIONS_DIR)')
site_packages=$(python3 -c 'import ansible_collections.kubernetes.core as c, os; print(os.path.dirname(os.path.dirname(os.path.dirname(list(c.__path__)[0]))))')

export KUBECONFIG=$kubeconfig
export PATH=$bin_dir:$PATH
export ANSIBLE_COLLECTIONS_PATH=$collections:$site_packages
export ANSIBLE_LOCALHOST_WARNING=False ANSIBLE_INVENTORY_UNPARSED_WARNING=False

kubectl create namespace payments --dry-run=client -o yaml | kubectl apply -f - > /dev/null
# No Cilium operator or agent runs on kwok's simulated nodes. Register the CiliumNode CRD as
# the operator would, and run a stand-in that publishes each node's IPsec SPI as an agent would,
# so that the role's posture check has something to read.
kubectl apply -f tests/fixtures/crds/cilium/ciliumnodes.yaml > /dev/null
kubectl wait --for=condition=Established crd/ciliumnodes.cilium.io --timeout=60s > /dev/null
python3 tests/cluster/simulated_agent.py --kubeconfig "$kubeconfig" --lifetime 600 &
agent_pid=$!
trap 'kill "$agent_pid" 2> /dev/null || true' EXIT
extra='{"istio_mtls_namespaces": [{"name": "default"}, {"name": "payments", "mode": "PERMISSIVE"}]}'
log_dir=$(mktemp -d)
for run in 1 2; do
  echo "=== site.yml, run $run ==="
  ansible-playbook -i localhost, playbooks/site.yml \
    -e @tests/integration/vars/standin_charts.yml -e "$extra" | tee "$log_dir/run$run.log"
done

recap() { grep -E '^localhost +:' "$1"; }
second_changed=$(recap "$log_dir/run2.log" | sed -E 's/.*changed=([0-9]+).*/\1/')

echo
echo "=== Summary ==="
echo "API server:       $(kubectl config view -o jsonpath='{.clusters[0].cluster.server}')"
echo "kubeconfig:       $kubeconfig"
echo "nodes:            $(kubectl get nodes --no-headers | wc -l) simulated by kwok"
echo "cilium-config:    enable-ipsec=$(kubectl -n kube-system get configmap cilium-config -o jsonpath='{.data.enable-ipsec}')"
echo "IPsec key:        SPI $(kubectl -n kube-system get secret cilium-ipsec-keys -o jsonpath='{.data.keys}' | base64 -d | cut -d+ -f1), written $(kubectl -n kube-system get secret cilium-ipsec-keys -o jsonpath='{.metadata.annotations.pod-encryption\.kubecrypt\.io/key-created-at}')"
echo "agents ready:     $(kubectl -n kube-system get daemonset cilium -o jsonpath='{.status.numberReady}/{.status.desiredNumberScheduled}')"
echo "CiliumNode SPIs:  $(kubectl get ciliumnodes -o jsonpath='{range .items[*]}{.metadata.name}={.spec.encryption.key} {end}')"
echo "PeerAuthentication:"
kubectl get peerauthentication --all-namespaces
echo "first run:  $(recap "$log_dir/run1.log")"
echo "second run: $(recap "$log_dir/run2.log")"
echo "Stop the control plane with: python3 tests/cluster/localcluster.py stop"
if [ "$second_changed" != "0" ]; then
  echo "The second run changed $second_changed task(s); it should change none." >&2
  exit 1
fi
