#!/usr/bin/env bash
# A 3-node RabbitMQ cluster on this machine, to try failover and for tests/integration/test_cluster.py:
#   r1@localhost  AMQP 127.0.0.1:5681  Erlang distribution 25681
#   r2@localhost  AMQP 127.0.0.1:5682  Erlang distribution 25682
#   r3@localhost  AMQP 127.0.0.1:5683  Erlang distribution 25683
# Debian's rabbitmq-server (the one scripts/services.sh installs), no plugins, one scheduler thread
# per node. Data, logs and configuration live in $STATE/<node>/; the nodes share the default node's
# Erlang cookie, so `rabbitmqctl -n r1@localhost ...` works as for the default node. The default
# node (rabbit@<host>, 5672) is never touched.
#
# Usage: scripts/cluster.sh up|down|status     start (and join) / stop the three nodes; idempotent
#        scripts/cluster.sh stop|start NODE    stop or start one node (r1, r2 or r3)
#        scripts/cluster.sh ctl NODE ARGS...   rabbitmqctl against that node
#        scripts/cluster.sh urls               FINPIPE_AMQP_URL for the cluster
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${FINPIPE_SERVICES_DIR:-$ROOT/.services}/cluster
NODES=(r1 r2 r3)
AMQP_BASE=5680   # r1 -> 5681
DIST_BASE=25680  # r1 -> 25681
SBIN=/usr/lib/rabbitmq/bin  # the scripts themselves, not Debian's wrappers that switch user

say() { printf 'cluster: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
num() { echo "${1#r}"; }
amqp_port() { echo $((AMQP_BASE + $(num "$1"))); }
dist_port() { echo $((DIST_BASE + $(num "$1"))); }

check_node() {
  case "$1" in r1 | r2 | r3) ;; *) die "unknown node '$1' (r1, r2 or r3)" ;; esac
}

# The environment one node's server and command-line tools run with.
node_env() {
  local n=$1 dir=$STATE/$1
  export HOME=$STATE/home  # holds the copy of the cookie
  export RABBITMQ_NODENAME=$n@localhost
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT
  RABBITMQ_NODE_PORT=$(amqp_port "$n")
  export RABBITMQ_DIST_PORT
  RABBITMQ_DIST_PORT=$(dist_port "$n")
  export RABBITMQ_CONF_ENV_FILE=$dir/rabbitmq-env.conf
  export RABBITMQ_CONFIG_FILE=$dir/rabbitmq.conf
  export RABBITMQ_ADVANCED_CONFIG_FILE=$dir/advanced.config
  export RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins
  export RABBITMQ_MNESIA_BASE=$dir/mnesia
  export RABBITMQ_LOG_BASE=$dir/log
  export RABBITMQ_PID_FILE=$dir/pid
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+S 1:1 +A 4 +P 65536"
  export ERL_CRASH_DUMP=$dir/erl_crash.dump
}

ctl() { # node args...
  local n=$1
  shift
  (node_env "$n" && "$SBIN/rabbitmqctl" -n "$n@localhost" "$@")
}

ensure_server() {
  [ -x "$SBIN/rabbitmq-server" ] && return 0
  say "rabbitmq-server is not installed: running scripts/services.sh up"
  "$ROOT/scripts/services.sh" up
  [ -x "$SBIN/rabbitmq-server" ] || die "rabbitmq-server still missing after services.sh up"
}

cookie() {
  local src
  for src in /var/lib/rabbitmq/.erlang.cookie "$HOME/.erlang.cookie"; do
    [ -s "$src" ] && { echo "$src"; return 0; }
  done
  return 1
}

# The default node's cookie, copied for the nodes and the tools (`ctl`) to use; with $1=install,
# start the default node first if it has not written one yet.
home() {
  local src
  mkdir -p "$STATE/home"
  [ -s "$STATE/home/.erlang.cookie" ] && return 0
  src=$(cookie) || { [ "${1:-}" = install ] && "$ROOT/scripts/services.sh" up && src=$(cookie); } \
    || die "no Erlang cookie in /var/lib/rabbitmq or \$HOME (run scripts/services.sh up)"
  install -m 400 "$src" "$STATE/home/.erlang.cookie"
}

prepare() { # node
  local n=$1 dir=$STATE/$1
  mkdir -p "$dir/mnesia" "$dir/log"
  : >"$dir/rabbitmq-env.conf"
  echo "[]." >"$dir/enabled_plugins"
  cat >"$dir/rabbitmq.conf" <<EOF
listeners.tcp.1 = 127.0.0.1:$(amqp_port "$n")
log.file.level = warning
log.console = false
disk_free_limit.absolute = 100MB
vm_memory_high_watermark.absolute = 512MiB
collect_statistics_interval = 30000
EOF
}

# Run "$@" in a session of its own with the environment of node $2, output to $1 and no other
# file descriptor inherited, so that whoever reads this script's output is not kept waiting.
detach() {
  local log=$1 n=$2
  shift 2
  (
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    node_env "$n"
    exec setsid "$@" >"$log" 2>&1 </dev/null
  ) &
}

running() { ctl "$1" -q ping >/dev/null 2>&1 && port_open "$(amqp_port "$1")"; }

start_node() {
  local n=$1
  if running "$n"; then return 0; fi
  prepare "$n"
  say "starting $n@localhost on 127.0.0.1:$(amqp_port "$n")"
  detach "$STATE/$n/server.out" "$n" "$SBIN/rabbitmq-server"
}

await_node() {
  local n=$1 i
  for ((i = 0; i < 120; i++)); do
    ctl "$n" -q await_startup --timeout 5 >/dev/null 2>&1 && port_open "$(amqp_port "$n")" \
      && return 0
    sleep 1
  done
  die "$n@localhost did not start (see $STATE/$n/server.out and $STATE/$n/log/)"
}

in_cluster() { # node: does r1 see it as a member?
  ctl r1 -q cluster_status --formatter json 2>/dev/null | grep -q "\"$1@localhost\""
}

join() { # node
  local n=$1
  in_cluster "$n" && return 0
  say "joining $n@localhost to r1@localhost"
  { ctl "$n" -q stop_app && ctl "$n" -q reset && ctl "$n" -q join_cluster r1@localhost \
    && ctl "$n" -q start_app; } >>"$STATE/$n/join.log" 2>&1 \
    || die "$n@localhost could not join r1@localhost (see $STATE/$n/join.log)"
  await_node "$n"
}

up() {
  ensure_server
  home install
  local n
  # All at once: a node that stopped while the others ran waits for them at start.
  for n in "${NODES[@]}"; do start_node "$n"; done
  for n in "${NODES[@]}"; do await_node "$n"; done
  join r2
  join r3
  ctl r1 -q await_online_nodes 3 --timeout 60 >/dev/null || die "the cluster has not 3 nodes"
  say "3-node RabbitMQ cluster ready: $(urls)"
}

stop_node() {
  local n=$1
  if ! ctl "$n" -q ping >/dev/null 2>&1; then return 0; fi
  ctl "$n" -q stop >/dev/null 2>&1 || true
  local i
  for ((i = 0; i < 120; i++)); do
    port_open "$(amqp_port "$n")" || ctl "$n" -q ping >/dev/null 2>&1 || break
    sleep 0.25
  done
  say "$n@localhost stopped"
}

down() {
  local n
  for n in r3 r2 r1; do stop_node "$n"; done
}

status() {
  local n
  for n in "${NODES[@]}"; do
    if running "$n"; then
      say "$n@localhost: up on 127.0.0.1:$(amqp_port "$n")"
    else
      say "$n@localhost: down"
    fi
  done
  if running r1; then
    ctl r1 -q cluster_status --formatter json 2>/dev/null \
      | sed -n 's/.*"running_nodes":\[\([^]]*\)\].*/cluster: running nodes: \1/p' >&2
  fi
}

urls() {
  local n out=""
  for n in "${NODES[@]}"; do
    out+="${out:+,}amqp://guest:guest@127.0.0.1:$(amqp_port "$n")/%2F"
  done
  echo "$out"
}

case "${1:-status}" in
  up | start | urls) ;;
  *) home ;;
esac
case "${1:-status}" in
  up) up ;;
  down) down ;;
  status) status ;;
  urls) urls ;;
  stop) check_node "${2:-}"; stop_node "$2" ;;
  start) check_node "${2:-}"; ensure_server; home install; start_node "$2"; await_node "$2"
    say "$2@localhost ready on 127.0.0.1:$(amqp_port "$2")" ;;
  ctl) check_node "${2:-}"; n=$2; shift 2; ctl "$n" "$@" ;;
  *) die "usage: $0 up|down|status|urls|stop NODE|start NODE|ctl NODE ARGS..." ;;
esac
