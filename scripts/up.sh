#!/bin/sh
# Starts one broker and one gateway as two processes wired together over the mesh, with data
# under ${DATA:-./data}. Ctrl-C or SIGTERM stops both (and, run by `go tool task up`, a SIGTERM
# or SIGINT to that process alone: see lib.sh); each one's exit status is printed.
set -eu
. "$(dirname "$0")/lib.sh"
procs_init up
DATA="${DATA:-./data}"
BROKER_BIND="${BROKER_BIND:-127.0.0.1:7070}"
# Two server processes on one machine: each gets half the cores (GOMAXPROCS, at least 1) unless
# GOMAXPROCS is set; with the default both Go schedulers would compete for every core.
SHARE="${GOMAXPROCS:-$(( $(nproc 2>/dev/null || echo 2) / 2 ))}"
[ "$SHARE" -ge 1 ] || SHARE=1
KAFKA_LISTEN="${KAFKA_LISTEN:-:9092}"
# The gateway's status page and /metrics (STATUS_PORT=… in the task; STATUS_ADDR= turns it off).
STATUS_ADDR="${STATUS_ADDR-127.0.0.1:9464}"
mkdir -p bin "$DATA"
echo "up: building broker and gateway into ./bin (a first build compiles the dependencies, a minute or more)"
procs_step go build -v -o bin/ ./cmd/gateway ./cmd/broker
procs_port_free "$KAFKA_LISTEN" PORT
[ -z "$STATUS_ADDR" ] || procs_port_free "$STATUS_ADDR" STATUS_PORT
GW_ID="$(./bin/gateway -data "$DATA/gateway" -print-node-id)"
rm -f "$DATA/broker.addr"
GOMAXPROCS=$SHARE ./bin/broker -data "$DATA/broker" -bind "$BROKER_BIND" -trust "$GW_ID" -addr-file "$DATA/broker.addr" &
BROKER_PID=$!
procs_add $BROKER_PID broker
procs_wait_file "$DATA/broker.addr" broker $BROKER_PID
GOMAXPROCS=$SHARE ./bin/gateway -data "$DATA/gateway" -listen "$KAFKA_LISTEN" -brokers "$(cat "$DATA/broker.addr")" ${STATUS_ADDR:+-metrics "$STATUS_ADDR"} ${GATEWAY_ARGS:-} &
GW_PID=$!
procs_add $GW_PID gateway
wait $GW_PID
