#!/usr/bin/env bash
# One wg-quick session in two namespaces it makes and removes: udptun-wg on side A, PEER on
# side B; wg-quick up both, ping, iperf3 5 s, wg show both, wg-quick down both, then what is
# left (devices, socket files, the daemon). Needs root, wireguard-tools, iperf3, Node 24 in
# node_modules (make setup).
# Usage: scripts/wg-quick-session.sh [PEER [LABEL]]   PEER: bin/udptun-wg (default) or a
#        wireguard-go binary, e.g. .deps/trixie/root/usr/bin/wireguard-go
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PEER_IMPL=$(readlink -f "${1:-$REPO/bin/udptun-wg}"); LABEL=${2:-$(basename "$PEER_IMPL")}
D=$(mktemp -d /tmp/wgdemo.XXXX); chmod 700 "$D"
A=wqa$$; B=wqb$$
ip netns add $A; ip netns add $B
cleanup() { ip netns del $A 2>/dev/null || true; ip netns del $B 2>/dev/null || true; rm -rf "$D"; }
trap cleanup EXIT
ip link add va$$ netns $A type veth peer name vb$$ netns $B
ip -n $A addr add 192.168.77.1/24 dev va$$; ip -n $A link set va$$ up; ip -n $A link set lo up
ip -n $B addr add 192.168.77.2/24 dev vb$$; ip -n $B link set vb$$ up; ip -n $B link set lo up
ka=$(wg genkey); kb=$(wg genkey); pa=$(echo "$ka" | wg pubkey); pb=$(echo "$kb" | wg pubkey)
# conf FILE PRIVATE-KEY OWN-HOST PEER-PUBLIC-KEY PEER-HOST: one side's wg-quick file (hosts .1/.2).
conf() {
  cat > "$1" <<C
[Interface]
PrivateKey = $2
Address = 10.77.0.$3/24, fd77::$3/64
ListenPort = 51820

[Peer]
PublicKey = $4
AllowedIPs = 10.77.0.$5/32, fd77::$5/128
Endpoint = 192.168.77.$5:51820
C
}
conf $D/wqa.conf "$ka" 1 "$pb" 2
conf $D/wqb.conf "$kb" 2 "$pa" 1
chmod 600 $D/*.conf
echo "### side A: udptun-wg; side B: $LABEL"
echo "\$ WG_QUICK_USERSPACE_IMPLEMENTATION=udptun-wg wg-quick up wqa.conf   (netns A)"
ip netns exec $A env WG_QUICK_USERSPACE_IMPLEMENTATION=$REPO/bin/udptun-wg wg-quick up $D/wqa.conf 2>&1
echo "\$ WG_QUICK_USERSPACE_IMPLEMENTATION=$LABEL wg-quick up wqb.conf   (netns B)"
ip netns exec $B env WG_QUICK_USERSPACE_IMPLEMENTATION=$PEER_IMPL WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 wg-quick up $D/wqb.conf 2>&1
ip netns exec $B iperf3 -s -1 -D -B 10.77.0.2 >/dev/null
echo "\$ ping -c 3 10.77.0.2 (A -> B)"
ip netns exec $A ping -c 3 -i 0.2 10.77.0.2 | tail -2
echo "\$ iperf3 -c 10.77.0.2 -t 5 (A -> B)"
ip netns exec $A iperf3 -c 10.77.0.2 -t 5 | tail -4
echo "\$ wg show wqa   (netns A)"
ip netns exec $A wg show wqa | sed "s|$pa|<A pub>|; s|$pb|<B pub>|"
echo "\$ wg show wqb   (netns B)"
ip netns exec $B wg show wqb | sed "s|$pa|<A pub>|; s|$pb|<B pub>|"
pida=$(pgrep -f "udptun-wg.* wqa$|wg-cli/main.* wqa$" | head -1 || true)
echo "\$ wg-quick down wqa.conf; wg-quick down wqb.conf"
ip netns exec $A wg-quick down $D/wqa.conf 2>&1
ip netns exec $B wg-quick down $D/wqb.conf 2>&1
t0=$(date +%s%N); running() { [ -n "$pida" ] && [ -e /proc/$pida ] && ! grep -q '^[0-9]* ([^)]*) Z' /proc/$pida/stat; }  # a zombie has exited (this VM's init reaps late)
while running && [ $(( ($(date +%s%N)-t0)/1000000 )) -lt 5000 ]; do sleep 0.02; done
echo "udptun-wg (pid $pida) gone $(( ($(date +%s%N)-t0)/1000000 )) ms after both downs returned"
echo "left behind: devices: $(ip -n $A link show wqa 2>/dev/null | wc -l)+$(ip -n $B link show wqb 2>/dev/null | wc -l), sockets: $(ls /var/run/wireguard/ 2>/dev/null | grep -c 'wq[ab].sock' || true), udptun-wg process ($pida) running: $(running && echo yes || echo no)"
