"""What the client scripts (failover.py, txn.py) print: out writes one JSON object a line on
stdout (what the test checks), log a timestamped line on stderr (for a failed run's
post-mortem). Imported from the scripts' own directory (Python puts it first on sys.path)."""
import json
import sys
import time


def out(**o):
    sys.stdout.write(json.dumps(o) + "\n")
    sys.stdout.flush()


def log(msg):
    sys.stderr.write("%s %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()
