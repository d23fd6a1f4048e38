#!/bin/sh
# Starts one broker and one gateway as two processes wired together over the mesh, with data
# under ${DATA:-./data}. Ctrl-C stops both.
set -eu
DATA="${DATA:-./data}"
BROKER_BIND="${BROKER_BIND:-127.0.0.1:7070}"
# Two server processes on one machine: each gets half the cores (GOMAXPROCS, at least 1) unless
# GOMAXPROCS is set; with the default both Go schedulers would compete for every core.
SHARE="${GOMAXPROCS:-$(( $(nproc 2>/dev/null || echo 2) / 2 ))}"
[ "$SHARE" -ge 1 ] || SHARE=1
mkdir -p bin "$DATA"
go build -o bin/ ./cmd/gateway ./cmd/broker
GW_ID="$(./bin/gateway -data "$DATA/gateway" -print-node-id)"
rm -f "$DATA/broker.addr"
GOMAXPROCS=$SHARE ./bin/broker -data "$DATA/broker" -bind "$BROKER_BIND" -trust "$GW_ID" -addr-file "$DATA/broker.addr" &
BROKER_PID=$!
trap 'kill $BROKER_PID $GW_PID 2>/dev/null; wait' EXIT
trap 'exit 0' INT TERM
GW_PID=""
i=0
while [ ! -s "$DATA/broker.addr" ]; do
  i=$((i+1)); [ $i -gt 100 ] && { echo "broker did not start" >&2; exit 1; }
  kill -0 $BROKER_PID 2>/dev/null || { echo "broker exited" >&2; exit 1; }
  sleep 0.1
done
GOMAXPROCS=$SHARE ./bin/gateway -data "$DATA/gateway" -brokers "$(cat "$DATA/broker.addr")" ${GATEWAY_ARGS:-} &
GW_PID=$!
wait $GW_PID || true
