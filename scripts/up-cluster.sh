#!/bin/sh
# Starts a three-broker metadata quorum and one gateway as four processes on this machine, with
# data under ${DATA:-./data}/cluster. Kafka clients use the gateway on ${KAFKA_LISTEN:-:9092}.
# Ctrl-C or SIGTERM stops them all (and, run by `go tool task up-cluster`, a SIGTERM or SIGINT
# to that process alone: see lib.sh).
#
# Brokers: mesh on 127.0.0.1:7070..7072 (BROKER_PORT), admin API on 127.0.0.1:9644..9646
# (ADMIN_PORT), e.g. `./bin/broker quorum status -admin 127.0.0.1:9644`. BIN_DIR names a
# directory holding already-built broker and gateway binaries (otherwise they are built into
# ./bin).
set -eu
. "$(dirname "$0")/lib.sh"
procs_init up-cluster
DATA="${DATA:-./data}/cluster"
KAFKA_LISTEN="${KAFKA_LISTEN:-:9092}"
BROKER_PORT="${BROKER_PORT:-7070}"
ADMIN_PORT="${ADMIN_PORT:-9644}"
# The gateway's status page and /metrics (STATUS_PORT=… in the task; STATUS_ADDR= turns it off).
STATUS_ADDR="${STATUS_ADDR-127.0.0.1:9464}"
# Four server processes on one machine: each gets a quarter of the cores (GOMAXPROCS, at
# least 1) unless GOMAXPROCS is set.
SHARE="${GOMAXPROCS:-$(( $(nproc 2>/dev/null || echo 2) / 4 ))}"
[ "$SHARE" -ge 1 ] || SHARE=1
if [ -n "${BIN_DIR:-}" ]; then
  BIN="$BIN_DIR"
else
  BIN=./bin
  mkdir -p bin
  echo "up-cluster: building broker and gateway into ./bin (a first build compiles the dependencies, a minute or more)"
  procs_step go build -v -o bin/ ./cmd/gateway ./cmd/broker
fi
if ! "$BIN/broker" -h 2>&1 | grep -q quorum-seeds; then
  echo "up-cluster: this cmd/broker has no -quorum-seeds flag (the metadata quorum is not in this tree)" >&2
  exit 1
fi
procs_port_free "$KAFKA_LISTEN" PORT
[ -z "$STATUS_ADDR" ] || procs_port_free "$STATUS_ADDR" STATUS_PORT
mkdir -p "$DATA"

GW_ID="$("$BIN/gateway" -data "$DATA/gateway" -print-node-id)"
SEEDS=""
TRUST="$GW_ID"
for i in 0 1 2; do
  id="$("$BIN/broker" -data "$DATA/broker-$i" -print-node-id)"
  SEEDS="${SEEDS:+$SEEDS,}$id@127.0.0.1:$((BROKER_PORT + i))"
  TRUST="$TRUST,$id"
done

PIDS=""
for i in 0 1 2; do
  rm -f "$DATA/broker-$i.addr"
  GOMAXPROCS=$SHARE "$BIN/broker" -data "$DATA/broker-$i" -bind "127.0.0.1:$((BROKER_PORT + i))" -trust "$TRUST" \
    -addr-file "$DATA/broker-$i.addr" -quorum-seeds "$SEEDS" -quorum-voters 3 -admin "127.0.0.1:$((ADMIN_PORT + i))" &
  PIDS="$PIDS $!"
  procs_add $! "broker-$i"
done
for i in 0 1 2; do
  # shellcheck disable=SC2086 # PIDS is a list
  procs_wait_file "$DATA/broker-$i.addr" "broker-$i" $PIDS
done
GOMAXPROCS=$SHARE "$BIN/gateway" -data "$DATA/gateway" -listen "$KAFKA_LISTEN" -brokers "$SEEDS" ${STATUS_ADDR:+-metrics "$STATUS_ADDR"} ${GATEWAY_ARGS:-} &
GW_PID=$!
procs_add $GW_PID gateway
echo "up-cluster: brokers admin on 127.0.0.1:$ADMIN_PORT..$((ADMIN_PORT + 2)); Kafka on $KAFKA_LISTEN; Ctrl-C stops all"
wait $GW_PID
