# shellcheck shell=bash
# bench/lib/tcp-cc.sh -- may a network namespace use a TCP congestion control?
# The bench makes each --tcp-cc entry both namespaces' net.ipv4.tcp_congestion_control.
# Outside the initial namespace the kernel allows that only for the congestion controls
# the host lists in net.ipv4.tcp_allowed_congestion_control ("Operation not permitted"
# otherwise), so run.sh asks once, up front, in a throwaway namespace.

# tcp_cc_refusal PREFIX CC: prints why CC cannot be set inside a namespace, nothing if it
# can. Returns 2 if no namespace could be made to find out.
tcp_cc_refusal() {
  local ns="$1-ccprobe" cc=$2 err
  ip netns del "$ns" 2>/dev/null # a leftover of a killed run with this prefix
  ip netns add "$ns" 2>/dev/null || { echo "cannot create namespace $ns to check tcp_congestion_control"; return 2; }
  if ! err=$(ip netns exec "$ns" sysctl -qw net.ipv4.tcp_congestion_control="$cc" 2>&1 >/dev/null); then
    echo "${err##*: } (the host's net.ipv4.tcp_allowed_congestion_control is \"$(sysctl -n net.ipv4.tcp_allowed_congestion_control)\")"
  fi
  ip netns del "$ns"
  return 0
}
