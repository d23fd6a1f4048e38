#!/bin/sh
# Runs the gateway with an embedded broker in one process (no mesh), Kafka on
# ${KAFKA_LISTEN:-:9092}, data under ${DATA:-./data}/single. Ctrl-C or SIGTERM stops it (and,
# run by `go tool task up-single`, a SIGTERM or SIGINT to that process alone: see lib.sh).
set -eu
. "$(dirname "$0")/lib.sh"
procs_init up-single
DATA="${DATA:-./data}"
KAFKA_LISTEN="${KAFKA_LISTEN:-:9092}"
mkdir -p bin
echo "up-single: building the gateway into ./bin (a first build compiles the dependencies, a minute or more)"
procs_step go build -v -o bin/ ./cmd/gateway
if command -v ss >/dev/null 2>&1 && ss -Hltn "sport = ${KAFKA_LISTEN##*:}" 2>/dev/null | grep -q .; then
  echo "up-single: port ${KAFKA_LISTEN##*:} is in use; pick another, e.g. go tool task up-single PORT=$(( ${KAFKA_LISTEN##*:} + 1 ))" >&2
  exit 1
fi
# shellcheck disable=SC2086 # GATEWAY_ARGS is a flag list
./bin/gateway -data "$DATA/single" -listen "$KAFKA_LISTEN" ${GATEWAY_ARGS:-} &
GW_PID=$!
procs_add $GW_PID gateway
wait $GW_PID
