#!/bin/sh
# Runs Jaeger all-in-one (the version tools/go.mod's tool line pins; OTLP on :4317/:4318,
# API/UI on :16686) until Ctrl-C or SIGTERM; run by `go tool task jaeger`, a SIGTERM or
# SIGINT to that process alone stops it too (see lib.sh).
set -eu
. "$(dirname "$0")/lib.sh"
procs_init jaeger
cd "$(dirname "$0")/../tools"
echo "jaeger: starting (its first run builds Jaeger: minutes)"
go tool jaeger "$@" &
JAEGER_PID=$!
procs_add $JAEGER_PID jaeger
wait $JAEGER_PID
