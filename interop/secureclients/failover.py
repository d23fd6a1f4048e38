"""confluent-kafka-python (librdkafka) through a partition leader's failover (interop/repl's
ClientsLeaderKill): one role per process, sys.argv[1]:

  produce  an idempotent producer (enable.idempotence, so acks=all) sends the values 0..N-1 to
           partition 0 of TOPIC, a few milliseconds apart, pipelined as librdkafka does. Once
           the first PAUSE_AT are acknowledged it prints {"op":"paused"} and waits for a line on
           stdin (the test kills the leader meanwhile), then sends the rest and flushes.
  consume  a consumer in group GROUP reads TOPIC from the start until it has read the N values,
           committing as librdkafka does by itself.

Settings from the environment: BROKER (host:port), TOPIC, GROUP, N, PAUSE_AT. Everything the
test checks is printed on stdout, one JSON object a line: {"op":"send",seq,value,ok,partition,
offset,err}, {"op":"poll",partition,offset,value}, {"op":"reset",partition} (an assignment
change), {"op":"commit",partition,offset}, {"op":"error",err} (an error that reached the
application: a failed delivery, a fatal client error, an error event from poll),
{"op":"done"}. librdkafka's own log and its transient errors (its retries) go to stderr. Exit
status 0 unless an error reached the application."""
import os
import sys

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

from clientio import log, out


topic, n = os.environ["TOPIC"], int(os.environ["N"])
errors = []


def on_error(err):
    # librdkafka reports transient conditions here (a broker down, all brokers down) and goes
    # on retrying; only a fatal error ends the client.
    log("error_cb: %s" % err)
    if err.fatal():
        errors.append(str(err))
        out(op="error", err="fatal: %s" % err)


base = {
    "bootstrap.servers": os.environ["BROKER"],
    "error_cb": on_error,
    "topic.metadata.refresh.interval.ms": 1000,
    "reconnect.backoff.max.ms": 1000,
    "socket.connection.setup.timeout.ms": 3000,
}


def produce():
    pause_at = int(os.environ["PAUSE_AT"])
    p = Producer(dict(base, **{
        "enable.idempotence": True,  # acks=all, retries without limit within the timeout
        "message.timeout.ms": 150000,
        "linger.ms": 1,
        "retry.backoff.ms": 100,
    }))

    def delivered(i):
        def cb(err, msg):
            if err is not None:
                errors.append(str(err))
                out(op="send", seq=i, value=str(i), ok=False, err=str(err))
                out(op="error", err="delivery of %d: %s" % (i, err))
            else:
                out(op="send", seq=i, value=str(i), ok=True, partition=msg.partition(), offset=msg.offset())
        return cb

    for i in range(n):
        if i == pause_at:
            p.flush(150)
            out(op="paused")
            sys.stdin.readline()
        p.produce(topic, value=str(i).encode(), partition=0, on_delivery=delivered(i))
        p.poll(0.005)
    left = p.flush(150)
    if left:
        errors.append("%d records undelivered" % left)
        out(op="error", err="%d records still undelivered after flush" % left)
    out(op="done")
    return not errors


def consume():
    c = Consumer(dict(base, **{
        "group.id": os.environ["GROUP"],
        "auto.offset.reset": "earliest",
        "enable.auto.commit": True,
        "auto.commit.interval.ms": 500,
        "session.timeout.ms": 30000,
        "heartbeat.interval.ms": 1000,
        "fetch.wait.max.ms": 200,
        "on_commit": committed,
        "debug": "cgrp,fetch,topic",  # the group protocol's steps on stderr, shown when the test fails
    }))

    def assigned(consumer, parts):
        log("assigned %s" % parts)
        for tp in parts:
            out(op="reset", partition=tp.partition)

    c.subscribe([topic], on_assign=assigned)
    seen = set()
    while len(seen) < n:
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                continue
            errors.append(str(m.error()))
            out(op="error", err="poll: %s" % m.error())
            continue
        v = m.value().decode()
        out(op="poll", partition=m.partition(), offset=m.offset(), value=v)
        seen.add(v)
    try:  # commit what was read and say so (close commits the same offsets again)
        for tp in c.commit(asynchronous=False):
            if tp.error is None and tp.offset >= 0:
                out(op="commit", partition=tp.partition, offset=tp.offset)
    except KafkaException as e:
        if e.args[0].code() != KafkaError._NO_OFFSET:  # nothing new to commit
            errors.append(str(e))
            out(op="error", err="commit: %s" % e)
    c.close()
    out(op="done")
    return not errors


def committed(err, parts):
    if err is not None:
        log("commit: %s" % err)  # auto-commit retries at the next interval
        return
    for tp in parts:
        if tp.error is None and tp.offset >= 0:
            out(op="commit", partition=tp.partition, offset=tp.offset)


if __name__ == "__main__":
    role = {"produce": produce, "consume": consume}.get(sys.argv[1] if len(sys.argv) > 1 else "")
    if role is None:
        sys.exit("usage: failover.py produce|consume")
    sys.exit(0 if role() else 1)
