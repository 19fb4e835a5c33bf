#!/usr/bin/env bash
# Install (if missing), start (if not running) and wait for the services finpipe needs:
#   RabbitMQ    - Debian's rabbitmq-server, listening on 127.0.0.1:5672
#   MongoDB     - FINPIPE_MONGO_URI if it points elsewhere; else a local `mongod` if installed; else
#                 mongo:7 in Docker if a Docker engine answers; else FerretDB v1 (MongoDB wire
#                 protocol) built from the Go module proxy, on
#   PostgreSQL  - Debian's postgresql, a cluster of its own in $STATE/pg, on 127.0.0.1 only.
#   Prometheus  - Debian's prometheus, installed only: the tests run `promtool` and a server of
#                 their own (own port, own data); the package's service is stopped.
# Usage: scripts/services.sh up|down|status     Idempotent; safe to run again at any time.
#        scripts/services.sh mongo-down         stop the MongoDB side only (FerretDB, PostgreSQL)
#        scripts/services.sh mongo-stop|mongo-start|pg-stop [immediate]|pg-start|rabbit-stop|...
#                                               one service at a time (the fault tests use them)
#        scripts/services.sh cluster up|down|status|stop NODE|start NODE|ctl NODE ...|urls
#                                               a 3-node RabbitMQ cluster beside the default node
#                                               (scripts/cluster.sh)
# Environment: FINPIPE_SERVICES_DIR (state folder, default .services), FINPIPE_MONGO_PORT (27017),
#   FINPIPE_PG_PORT (25432), FINPIPE_FERRETDB_BACKEND (postgresql, or sqlite to compare).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${FINPIPE_SERVICES_DIR:-$ROOT/.services}
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/finpipe
FERRETDB_VERSION=${FERRETDB_VERSION:-v1.24.2}
# FerretDB v1.24.2 pins modernc.org/sqlite v1.32.0; a build with it crashed here once under
# concurrent load ("fatal error: fault" in the WAL code), so the build takes a newer release of
# the same driver. It matters only with FINPIPE_FERRETDB_BACKEND=sqlite; it also names the cached
# binary, which the PostgreSQL backend uses as it is.
FERRETDB_SQLITE=${FERRETDB_SQLITE:-v1.38.2}
FERRETDB_BACKEND=${FINPIPE_FERRETDB_BACKEND:-postgresql}
MONGO_PORT=${FINPIPE_MONGO_PORT:-27017}
# Below the ephemeral range (32768-60999 on Linux), where a client's end of a connection could
# hold the port while PostgreSQL is down.
PG_PORT=${FINPIPE_PG_PORT:-25432}
AMQP_PORT=5672
# Servers that run as a user of their own (postgres, rabbitmq) keep their data in the state folder,
# or, when that user cannot reach it (a checkout under /root), in a folder of the system named
# after it.
OUTSIDE=/var/lib/finpipe/$(printf '%s' "$STATE" | cksum | cut -d' ' -f1)
PG_DIR=$STATE/pg        # the PostgreSQL cluster (data/) and its log
[ ! -d "$PG_DIR" ] && [ -d "$OUTSIDE/pg" ] && PG_DIR=$OUTSIDE/pg
PG_DATA=$PG_DIR/data
PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/ferretdb"

say() { printf 'services: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port seconds name
  local i
  for ((i = 0; i < $2 * 4; i++)); do
    port_open "$1" && return 0
    sleep 0.25
  done
  die "$3 did not open port $1 within $2 s (see $STATE/*.log)"
}

wait_closed() { # port name: the fault tests need the service really gone
  local i
  for ((i = 0; i < 40; i++)); do port_open "$1" || return 0; sleep 0.25; done
  die "$2 still listening on 127.0.0.1:$1"
}

owned_dir() { # user name: create the folder `name` for a server that runs as `user`; prints it
  local dir=$STATE/$2
  if [ "$(id -u)" -eq 0 ]; then
    if ! (cd / && runuser -u "$1" -- test -x "$STATE"); then
      dir=$OUTSIDE/$2
      say "the $1 user cannot reach $STATE; its data goes to $dir"
    fi
    mkdir -p "$dir"
    chown "$1:" "$dir"
    chmod 700 "$dir"
  fi
  mkdir -p "$dir"
  echo "$dir"
}

apt_install() {
  command -v apt-get >/dev/null || die "apt-get not found: install $* by hand"
  say "installing $* with apt-get"
  if [ ! -f "$STATE/.apt-updated" ]; then
    apt-get update -qq >"$STATE/apt.log" 2>&1 || die "apt-get update failed (see $STATE/apt.log)"
    touch "$STATE/.apt-updated"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >>"$STATE/apt.log" 2>&1 \
    || die "apt-get install $* failed (see $STATE/apt.log)"
}

# ---------------------------------------------------------------- RabbitMQ
rabbit_up() {
  if port_open $AMQP_PORT; then
    say "RabbitMQ already listening on 127.0.0.1:$AMQP_PORT"
    return 0
  fi
  command -v rabbitmq-server >/dev/null || [ -x /usr/sbin/rabbitmq-server ] || apt_install rabbitmq-server
  export PATH=$PATH:/usr/sbin:/usr/lib/rabbitmq/bin
  say "starting rabbitmq-server"
  rabbitmq-server -detached >"$STATE/rabbitmq-start.log" 2>&1 || true
  # -detached returns before the node exists; await_startup needs a node to talk to.
  local i
  for ((i = 0; i < 120; i++)); do
    rabbitmqctl -q await_startup --timeout 5 >>"$STATE/rabbitmq-start.log" 2>&1 && break
    sleep 1
  done
  port_open $AMQP_PORT || rabbitmqctl -q await_startup --timeout 5 >/dev/null 2>&1 \
    || die "RabbitMQ did not start (see $STATE/rabbitmq-start.log and /var/log/rabbitmq/)"
  wait_port $AMQP_PORT 60 RabbitMQ
  say "RabbitMQ $(rabbitmqctl version 2>/dev/null || echo '?') ready on 127.0.0.1:$AMQP_PORT"
}

rabbit_down() {
  export PATH=$PATH:/usr/sbin:/usr/lib/rabbitmq/bin
  if command -v rabbitmqctl >/dev/null && port_open $AMQP_PORT; then
    rabbitmqctl stop >/dev/null 2>&1 || true
    say "RabbitMQ stopped"
  fi
}

# ---------------------------------------------------------------- PostgreSQL (FerretDB's backend)
pg_bindir() { # where initdb and pg_ctl are (Debian keeps them off PATH): the version that made the
  # data folder if there is one, else the newest installed
  local want="" dir
  [ -f "$PG_DATA/PG_VERSION" ] && want=$(cat "$PG_DATA/PG_VERSION")
  if [ -n "$want" ]; then
    dir=/usr/lib/postgresql/$want/bin
  else
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  fi
  if [ -n "$dir" ] && [ -x "$dir/pg_ctl" ]; then echo "$dir"; return 0; fi
  if [ -z "$want" ] && command -v pg_ctl >/dev/null && command -v initdb >/dev/null; then
    dirname "$(command -v pg_ctl)"
    return 0
  fi
  return 1
}

pg_install() { # prints the bin folder
  local bin
  if ! bin=$(pg_bindir); then
    [ -f "$PG_DATA/PG_VERSION" ] && die "$PG_DATA was made by PostgreSQL $(cat "$PG_DATA/PG_VERSION"), which is not installed"
    apt_install postgresql
    bin=$(pg_bindir) || die "PostgreSQL installed, but no pg_ctl found in /usr/lib/postgresql/*/bin"
  fi
  echo "$bin"
}

as_pg() { # run a PostgreSQL program as the owner of the data (the server refuses to run as root)
  if [ "$(id -u)" -eq 0 ]; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

pg_init() { # bin: create the cluster once; it is kept across down/up
  [ -f "$PG_DATA/PG_VERSION" ] && return 0
  PG_DIR=$(owned_dir postgres pg)
  PG_DATA=$PG_DIR/data
  as_pg test -w "$PG_DIR" || die "cannot write $PG_DIR as the PostgreSQL user"
  say "creating a PostgreSQL cluster in $PG_DATA"
  rm -rf "$PG_DATA.new"
  # Trust on 127.0.0.1 only: the server listens on no other address and on no Unix socket.
  as_pg "$1/initdb" -D "$PG_DATA.new" -U postgres --auth=trust -E UTF8 --locale=C \
    >"$PG_DIR/initdb.log" 2>&1 || die "initdb failed (see $PG_DIR/initdb.log)"
  printf '%s\n' "" "# finpipe: local only; the port is given at start (FINPIPE_PG_PORT)" \
    "listen_addresses = '127.0.0.1'" "unix_socket_directories = ''" \
    | as_pg tee -a "$PG_DATA.new/postgresql.conf" >/dev/null
  mv "$PG_DATA.new" "$PG_DATA"
}

pg_running() { # the cluster of this state folder runs (pg_ctl status: its process, not its port)
  local bin
  [ -f "$PG_DATA/postmaster.pid" ] && bin=$(pg_bindir) \
    && as_pg "$bin/pg_ctl" status -D "$PG_DATA" >/dev/null 2>&1
}

pg_ready() { as_pg "$1/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres; }

pg_up() {
  local bin i
  bin=$(pg_install)
  pg_init "$bin"
  if ! pg_running; then
    port_open "$PG_PORT" && die "port $PG_PORT is taken by another program; set FINPIPE_PG_PORT"
    say "starting PostgreSQL $(cat "$PG_DATA/PG_VERSION") on 127.0.0.1:$PG_PORT (data in $PG_DATA)"
    for ((i = 1; ; i++)); do
      as_pg "$bin/pg_ctl" start -D "$PG_DATA" -l "$PG_DIR/postgresql.log" -o "-p $PG_PORT" -w \
        -t 60 >/dev/null 2>&1 && break
      # A port in the ephemeral range can be held for a while by some client's own end of a
      # connection: "could not bind ... Address already in use". Wait for it to be let go.
      tail -n 5 "$PG_DIR/postgresql.log" | grep -q 'Address already in use' && [ "$i" -lt 30 ] \
        || die "PostgreSQL did not start (see $PG_DIR/postgresql.log)"
      sleep 2
    done
  fi
  for ((i = 0; i < 240; i++)); do
    pg_ready "$bin" && break
    sleep 0.25
  done
  pg_ready "$bin" || die "PostgreSQL not ready on 127.0.0.1:$PG_PORT within 60 s" \
    "(running on another port? see $PG_DIR/postgresql.log)"
  if [ "$(as_pg "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'ferretdb'")" != 1 ]; then
    as_pg "$bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres ferretdb \
      || die "could not create the ferretdb database"
  fi
}

pg_down() { # [mode]
  pg_running || return 0
  as_pg "$(pg_bindir)/pg_ctl" stop -D "$PG_DATA" -m "${1:-fast}" -w -t 60 >/dev/null \
    || die "PostgreSQL did not stop (see $PG_DIR/postgresql.log)"
  say "PostgreSQL stopped"
}

# ---------------------------------------------------------------- MongoDB / FerretDB
ferretdb_bin() {
  local bin=$CACHE/ferretdb-$FERRETDB_VERSION-sqlite-$FERRETDB_SQLITE
  if [ ! -x "$bin" ]; then
    command -v go >/dev/null || die "go is needed to build FerretDB $FERRETDB_VERSION"
    say "building FerretDB $FERRETDB_VERSION from the Go module proxy (once; cached in $CACHE)"
    mkdir -p "$CACHE"
    local dir src
    dir=$(go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" \
      | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [ -n "$dir" ] && [ -d "$dir" ] || die "go mod download of FerretDB $FERRETDB_VERSION failed"
    src=$(mktemp -d)
    cp -r "$dir/." "$src/"
    chmod -R u+w "$src"
    # version.txt is generated by FerretDB's own build and is not in the module: without it the
    # binary panics at start.
    echo "$FERRETDB_VERSION" >"$src/build/version/version.txt"
    (cd "$src" && go get "modernc.org/sqlite@$FERRETDB_SQLITE" && go mod tidy \
      && go build -o "$bin.tmp" ./cmd/ferretdb) >"$STATE/ferretdb-build.log" 2>&1 \
      || die "FerretDB build failed (see $STATE/ferretdb-build.log)"
    mv "$bin.tmp" "$bin"
    rm -rf "$src"
  fi
  echo "$bin"
}

ferretdb_pid() { # the FerretDB this state folder started, if it still runs
  local pid
  [ -f "$STATE/ferretdb.pid" ] || return 1
  pid=$(cat "$STATE/ferretdb.pid")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' '\n' <"/proc/$pid/cmdline" \
    | grep -q -- '^--handler=' || return 1
  echo "$pid"
}

ferretdb_backend() { # pid: the backend it runs on (sqlite for one started by an older script)
  tr '\0' '\n' <"/proc/$1/cmdline" | sed -n 's/^--handler=//p'
}

ferretdb_start() {
  local bin args where
  bin=$(ferretdb_bin)
  case $FERRETDB_BACKEND in
    postgresql)
      pg_up
      args=(--handler=postgresql "--postgresql-url=$PG_URL")
      where="PostgreSQL backend on 127.0.0.1:$PG_PORT" ;;
    sqlite)
      mkdir -p "$STATE/mongo-data"
      args=(--handler=sqlite "--sqlite-url=file:$STATE/mongo-data/")
      where="SQLite backend, data in $STATE/mongo-data" ;;
  esac
  say "starting FerretDB $FERRETDB_VERSION ($where)"
  nohup "$bin" "${args[@]}" --listen-addr="127.0.0.1:$MONGO_PORT" --telemetry=disable \
    --log-level=error --state-dir="$STATE" --debug-addr=- >"$STATE/ferretdb.log" 2>&1 &
  echo $! >"$STATE/ferretdb.pid"
  wait_port "$MONGO_PORT" 60 FerretDB
  say "MongoDB wire protocol (FerretDB $FERRETDB_VERSION) ready on 127.0.0.1:$MONGO_PORT"
}

ferretdb_stop() {
  local pid i
  if pid=$(ferretdb_pid); then
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 80; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.25
    done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
    say "FerretDB stopped"
  fi
  rm -f "$STATE/ferretdb.pid"
}

mongo_up() {
  if [ -n "${FINPIPE_MONGO_URI:-}" ] \
    && ! [[ "$FINPIPE_MONGO_URI" =~ (127\.0\.0\.1|localhost):$MONGO_PORT([/?,]|$) ]]; then
    say "using FINPIPE_MONGO_URI as given, not starting a local server" \
      "(to start one on another port, set FINPIPE_MONGO_PORT to the URI's port)"
    return 0
  fi
  local pid backend i
  if pid=$(ferretdb_pid); then
    backend=$(ferretdb_backend "$pid")
    if [ "$backend" = "$FERRETDB_BACKEND" ]; then
      [ "$backend" = postgresql ] && pg_up
      say "FerretDB ($backend backend) already listens on 127.0.0.1:$MONGO_PORT"
      return 0
    fi
    # Started by an older version of this script (SQLite was the default) or with the other
    # FINPIPE_FERRETDB_BACKEND: move it. The other backend's data is kept, not copied.
    say "FerretDB on 127.0.0.1:$MONGO_PORT runs on the $backend backend;" \
      "restarting it on $FERRETDB_BACKEND (the $backend data stays where it is, not copied)"
    ferretdb_stop
    for ((i = 0; i < 40; i++)); do port_open "$MONGO_PORT" || break; sleep 0.25; done
  fi
  if port_open "$MONGO_PORT"; then
    say "a MongoDB-compatible server already listens on 127.0.0.1:$MONGO_PORT (not ours to manage)"
    return 0
  fi
  if command -v mongod >/dev/null; then
    mkdir -p "$STATE/mongo-data"
    say "starting mongod"
    mongod --bind_ip 127.0.0.1 --port "$MONGO_PORT" --dbpath "$STATE/mongo-data" \
      --fork --logpath "$STATE/mongod.log" >/dev/null || die "mongod did not start"
    wait_port "$MONGO_PORT" 60 mongod
    say "MongoDB (mongod) ready on 127.0.0.1:$MONGO_PORT"
    return 0
  fi
  if docker info >/dev/null 2>&1; then
    say "starting MongoDB 7 in Docker (container $DOCKER_MONGO)"
    docker start "$DOCKER_MONGO" >/dev/null 2>&1 \
      || docker run -d --name "$DOCKER_MONGO" -p "127.0.0.1:$MONGO_PORT:27017" mongo:7 >/dev/null \
      || die "docker run mongo:7 failed"
    wait_port "$MONGO_PORT" 120 "MongoDB (Docker)"
    say "MongoDB 7 (Docker) ready on 127.0.0.1:$MONGO_PORT"
    return 0
  fi
  ferretdb_start
}

mongo_stop() { # the MongoDB wire-protocol server only; PostgreSQL keeps running
  ferretdb_stop
  if command -v mongod >/dev/null && [ -d "$STATE/mongo-data" ]; then
    mongod --dbpath "$STATE/mongo-data" --shutdown >/dev/null 2>&1 || true
  fi
  if docker info >/dev/null 2>&1; then
    docker stop "$DOCKER_MONGO" >/dev/null 2>&1 || true
  fi
}

mongo_down() { mongo_stop; pg_down; }

# ---------------------------------------------------------------- tools the tests use
tools_up() {
  local missing=()
  command -v curl >/dev/null || missing+=(curl)  # make demo talks to /submit with it
  command -v docker-compose >/dev/null || missing+=(docker-compose)
  command -v chromium >/dev/null || [ -x /usr/bin/chromium ] || missing+=(chromium)
  [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
  prometheus_tools
}

prometheus_tools() {
  command -v promtool >/dev/null && command -v prometheus >/dev/null && return 0
  apt_install --no-install-recommends prometheus
  # the package may start its own server on :9090; nothing here uses it
  if [ -d /run/systemd/system ]; then
    systemctl disable --now prometheus >/dev/null 2>&1 || true
  elif [ -x /etc/init.d/prometheus ]; then
    /etc/init.d/prometheus stop >/dev/null 2>&1 || true
  fi
}

status() {
  local pid backend
  port_open $AMQP_PORT && say "RabbitMQ: up on 127.0.0.1:$AMQP_PORT" || say "RabbitMQ: down"
  if pid=$(ferretdb_pid); then
    backend=$(ferretdb_backend "$pid")
    [ "$backend" = postgresql ] && backend="postgresql backend at $(tr '\0' '\n' \
      <"/proc/$pid/cmdline" | sed -n 's|^--postgresql-url=.*@\([^/]*\)/.*|\1|p')" \
      || backend="$backend backend"
    say "MongoDB: up on 127.0.0.1:$MONGO_PORT (FerretDB $FERRETDB_VERSION, $backend, pid $pid)"
  elif port_open "$MONGO_PORT"; then
    say "MongoDB: up on 127.0.0.1:$MONGO_PORT (not started from $STATE)"
  else
    say "MongoDB: down"
  fi
  if pg_running; then
    say "PostgreSQL: up on 127.0.0.1:$PG_PORT (data in $PG_DATA)"
  elif [ -f "$PG_DATA/PG_VERSION" ]; then
    say "PostgreSQL: down (data in $PG_DATA)"
  else
    say "PostgreSQL: none in $STATE"
  fi
}

# ---------------------------------------------------------------- command line
[[ $MONGO_PORT =~ ^[0-9]+$ ]] || die "FINPIPE_MONGO_PORT must be a port number, not '$MONGO_PORT'"
[[ $PG_PORT =~ ^[0-9]+$ ]] || die "FINPIPE_PG_PORT must be a port number, not '$PG_PORT'"
case $FERRETDB_BACKEND in
  postgresql | sqlite) ;;
  *) die "FINPIPE_FERRETDB_BACKEND must be postgresql or sqlite, not '$FERRETDB_BACKEND'" ;;
esac
# The default port keeps the container name older runs created.
DOCKER_MONGO=finpipe-mongo
[ "$MONGO_PORT" = 27017 ] || DOCKER_MONGO=finpipe-mongo-$MONGO_PORT

mkdir -p "$STATE"
case "${1:-up}" in
  up) tools_up; rabbit_up; mongo_up ;;
  down) mongo_down; rabbit_down ;;
  mongo-down) mongo_down ;;
  status) status ;;
  ferretdb-bin) ferretdb_bin ;;
  # Used by the fault tests: stop or start one local service without touching the others.
  rabbit-stop) export PATH=$PATH:/usr/sbin; rabbitmqctl -q stop_app ;;
  rabbit-start) export PATH=$PATH:/usr/sbin; rabbitmqctl -q start_app
    rabbitmqctl -q await_startup --timeout 60; wait_port $AMQP_PORT 60 RabbitMQ ;;
  mongo-stop)
    [ -f "$STATE/ferretdb.pid" ] || command -v mongod >/dev/null || docker info >/dev/null 2>&1 \
      || die "the MongoDB server was not started by this script; cannot stop it"
    mongo_stop
    wait_closed "$MONGO_PORT" "MongoDB server" ;;
  mongo-start) mongo_up ;;
  pg-stop) # [fast|immediate]: immediate is a crash as far as the data is concerned
    [[ ${2:-fast} =~ ^(fast|immediate)$ ]] || die "usage: $0 pg-stop [fast|immediate]"
    pg_running || die "no PostgreSQL of $STATE is running; cannot stop it"
    pg_down "${2:-fast}"
    wait_closed "$PG_PORT" PostgreSQL ;;
  pg-start) pg_up ;;
  cluster) shift; exec "$ROOT/scripts/cluster.sh" "$@" ;;
  *) die "usage: $0 up|down|status|mongo-down|mongo-stop|mongo-start|pg-stop|pg-start|rabbit-stop|rabbit-start|cluster" ;;
esac
