#!/bin/sh
# Like up.sh (one broker and one gateway as two processes over the mesh, data under
# ${DATA:-./data}), but Kafka clients get only a SASL_SSL listener on ${SECURE_LISTEN:-:9093}
# (SCRAM-SHA-256, SCRAM-SHA-512, PLAIN), with ACL authorization on and the super user admin.
# The first run writes a self-signed CA and server certificate and admin's password under
# $DATA/secure/ (ca.pem, server.pem, server.key, admin.password; private files mode 0600);
# later runs reuse them. No plaintext listener. Ctrl-C or SIGTERM stops both processes (and, run
# by `go tool task up-secure`, a SIGTERM or SIGINT to that process alone: see lib.sh).
#
# Environment: DATA, BROKER_BIND (mesh address of the broker, default 127.0.0.1:7070),
# SECURE_LISTEN, SECURE_HOSTS (extra names/IPs for the server certificate), BIN (binaries
# directory, default ./bin), BUILD=0 (use the binaries in BIN as they are), GATEWAY_ARGS.
set -eu
. "$(dirname "$0")/lib.sh"
procs_init up-secure
DATA="${DATA:-./data}"
BROKER_BIND="${BROKER_BIND:-127.0.0.1:7070}"
SECURE_LISTEN="${SECURE_LISTEN:-:9093}"
# The gateway's status page and /metrics (STATUS_PORT=… in the task; STATUS_ADDR= turns it off).
STATUS_ADDR="${STATUS_ADDR-127.0.0.1:9464}"
BIN="${BIN:-./bin}"
SHARE="${GOMAXPROCS:-$(( $(nproc 2>/dev/null || echo 2) / 2 ))}"
[ "$SHARE" -ge 1 ] || SHARE=1
mkdir -p "$BIN" "$DATA"
if [ "${BUILD:-1}" != 0 ]; then
  echo "up-secure: building broker and gateway into $BIN (a first build compiles the dependencies, a minute or more)"
  procs_step go build -v -o "$BIN/" ./cmd/gateway ./cmd/broker
fi
procs_port_free "$SECURE_LISTEN" SECURE_PORT
[ -z "$STATUS_ADDR" ] || procs_port_free "$STATUS_ADDR" STATUS_PORT
SECURE_FLAGS="$("$BIN/gateway" -init-secure "$DATA/secure" -init-secure-hosts "${SECURE_HOSTS:-}")"
GW_ID="$("$BIN/gateway" -data "$DATA/gateway" -print-node-id)"
rm -f "$DATA/broker.addr"
GOMAXPROCS=$SHARE "$BIN/broker" -data "$DATA/broker" -bind "$BROKER_BIND" -trust "$GW_ID" -addr-file "$DATA/broker.addr" &
BROKER_PID=$!
procs_add $BROKER_PID broker
procs_wait_file "$DATA/broker.addr" broker $BROKER_PID
echo "SASL_SSL on $SECURE_LISTEN; CA $DATA/secure/ca.pem; user admin, password in $DATA/secure/admin.password"
# shellcheck disable=SC2086 # SECURE_FLAGS and GATEWAY_ARGS are flag lists
GOMAXPROCS=$SHARE "$BIN/gateway" -data "$DATA/gateway" -brokers "$(cat "$DATA/broker.addr")" \
  -listeners "SASL_SSL://$SECURE_LISTEN" $SECURE_FLAGS ${STATUS_ADDR:+-metrics "$STATUS_ADDR"} ${GATEWAY_ARGS:-} &
GW_PID=$!
procs_add $GW_PID gateway
wait $GW_PID
