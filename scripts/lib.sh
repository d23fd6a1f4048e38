# Sourced by the up scripts (POSIX sh): the server processes a script starts, and how they stop.
#
#   procs_init NAME      traps: INT, TERM and HUP end the script with status 0; on any exit
#                        the servers are stopped, newest first: each gets SIGTERM, is waited
#                        for, and its exit status is printed ("NAME: broker stopped (exit
#                        status 0)").
#   procs_add PID LABEL  a server to stop that way.
#   procs_port_free ADDR VAR  exits 1 with a hint (`go tool task NAME VAR=…`) when ADDR's
#                        port is already taken.
#   procs_wait_file FILE LABEL PID...  waits (up to a minute) until the server LABEL has
#                        written FILE (its -addr-file); exits 1 if it has not by then or if
#                        one of the PIDs exits meanwhile.
#   procs_step CMD...    runs a start-up step (the build) so that a stop signal does not wait
#                        for it to finish (a shell runs a trap only after its foreground
#                        command): in the background, waited for; a stop sends it SIGTERM.
#
# Run by go-task (`go tool task up`, Taskfile.yml sets UP_STOP_WITH_TASK=1 and `watch: true`),
# the script also follows the go-task process, its parent:
# - A SIGTERM or SIGINT sent to the `go tool task …` process alone reaches go-task (cmd/go's
#   `go tool` forwards every signal to the tool), but go-task only logs it (task.go
#   InterceptInterruptSignals): nothing reaches this script. In watch mode go-task also exits
#   with status 0 on SIGINT/SIGTERM (watch.go closeOnInterrupt), and then `go` exits 0 too.
#   So the script watches its parent and, once it is gone, stops the servers as on SIGTERM.
# - In watch mode go-task never ends on its own when its command ends, so when the script
#   ends first (a server died, a busy port, a failed build) it ends go-task: with SIGTERM when
#   its own status is 0 (go-task and `go` then exit 0), otherwise with SIGHUP until go-task
#   takes its third one as "forcing shutdown" and exits 1 (the only non-zero exit go-task's
#   watch mode has; `go` then exits 1 too).
# A script run directly (not by go-task) does none of this: Ctrl-C or SIGTERM to it stops it.

PROCS=""        # "pid:label" pairs
PROCS_NAME=up
PROCS_TASK=""   # the go-task process, when run by it
PROCS_WATCHDOG=""
PROCS_STEP=""

procs_init() {
  PROCS_NAME="$1"
  trap procs_exit EXIT
  trap 'exit 0' INT TERM HUP
  if [ "${UP_STOP_WITH_TASK:-}" = 1 ] && [ "$(procs_comm "$PPID")" = task ]; then
    PROCS_TASK=$PPID
    # Polls: a shell has no other way to learn that a process which is not its child ended.
    ( while kill -0 "$PROCS_TASK" 2>/dev/null; do sleep 0.2; done; kill -TERM $$ 2>/dev/null ) &
    PROCS_WATCHDOG=$!
  fi
}

# procs_comm PID: the command name of a process (from /proc, else ps; "" or "none" if unknown).
procs_comm() {
  if [ -r "/proc/$1/comm" ]; then
    cat "/proc/$1/comm" 2>/dev/null
  else
    c="$(ps -o comm= -p "$1" 2>/dev/null)" || true
    basename "${c:-none}"
  fi
}

# procs_port_free ADDR VAR: fails (exit 1, with a hint naming the task variable VAR that moves it)
# when something already listens on ADDR's port. Without ss there is no check: the server's
# own bind then fails and says so.
procs_port_free() {
  port="${1##*:}"
  if command -v ss >/dev/null 2>&1 && ss -Hltn "sport = $port" 2>/dev/null | grep -q .; then
    echo "$PROCS_NAME: port $port is in use; pick another, e.g. go tool task $PROCS_NAME $2=$((port + 1))" >&2
    exit 1
  fi
}

procs_add() {
  PROCS="$1:$2 $PROCS"
}

procs_wait_file() {
  pw_file="$1" pw_label="$2"
  shift 2
  pw_n=0
  while [ ! -s "$pw_file" ]; do
    pw_n=$((pw_n+1)); [ $pw_n -gt 600 ] && { echo "$PROCS_NAME: $pw_label did not start within a minute" >&2; exit 1; }
    for pw_p in "$@"; do kill -0 "$pw_p" 2>/dev/null || { echo "$PROCS_NAME: $pw_label: a server exited while it started" >&2; exit 1; }; done
    sleep 0.1
  done
}

procs_step() {
  "$@" &
  PROCS_STEP=$!
  wait "$PROCS_STEP"
  PROCS_STEP=""
}

procs_exit() {
  st=$?
  set +e
  trap '' INT TERM HUP
  [ -n "$PROCS_WATCHDOG" ] && kill "$PROCS_WATCHDOG" 2>/dev/null
  if [ -n "$PROCS_STEP" ]; then
    kill -TERM "$PROCS_STEP" 2>/dev/null
    wait "$PROCS_STEP"
  fi
  for p in $PROCS; do
    kill -TERM "${p%%:*}" 2>/dev/null
    wait "${p%%:*}"
    echo "$PROCS_NAME: ${p#*:} stopped (exit status $?)"
  done
  if [ -n "$PROCS_TASK" ] && kill -0 "$PROCS_TASK" 2>/dev/null; then
    if [ "$st" = 0 ]; then
      kill -TERM "$PROCS_TASK" 2>/dev/null
    else
      echo "$PROCS_NAME: failed (status $st); ending go-task with SIGHUPs, its one way to exit 1 in watch mode" >&2
      # Signals sent while one is pending merge into one, hence the loop (bounded, in case
      # this go-task does not count them: then SIGTERM, status 0).
      n=0
      while kill -HUP "$PROCS_TASK" 2>/dev/null && [ $n -lt 100 ]; do n=$((n+1)); sleep 0.1; done
      kill -TERM "$PROCS_TASK" 2>/dev/null
    fi
  fi
  exit "$st"
}
