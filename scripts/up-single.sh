#!/bin/sh
# Runs the gateway with an embedded broker in one process (no mesh), Kafka on
# ${KAFKA_LISTEN:-:9092}, data under ${DATA:-./data}/single. Ctrl-C or SIGTERM stops it (and,
# run by `go tool task up-single`, a SIGTERM or SIGINT to that process alone: see lib.sh).
set -eu
. "$(dirname "$0")/lib.sh"
procs_init up-single
DATA="${DATA:-./data}"
KAFKA_LISTEN="${KAFKA_LISTEN:-:9092}"
# The gateway's status page and /metrics (STATUS_PORT=… in the task; STATUS_ADDR= turns it off).
STATUS_ADDR="${STATUS_ADDR-127.0.0.1:9464}"
mkdir -p bin
echo "up-single: building the gateway into ./bin (a first build compiles the dependencies, a minute or more)"
procs_step go build -v -o bin/ ./cmd/gateway
procs_port_free "$KAFKA_LISTEN" PORT
[ -z "$STATUS_ADDR" ] || procs_port_free "$STATUS_ADDR" STATUS_PORT
# shellcheck disable=SC2086 # GATEWAY_ARGS is a flag list
./bin/gateway -data "$DATA/single" -listen "$KAFKA_LISTEN" ${STATUS_ADDR:+-metrics "$STATUS_ADDR"} ${GATEWAY_ARGS:-} &
GW_PID=$!
procs_add $GW_PID gateway
wait $GW_PID
