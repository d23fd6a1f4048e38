"""confluent-kafka-python (librdkafka) transactions against a gateway, for interop/kafka's
txn_clients_test.go. One role per process, sys.argv[1]:

  etl    a consume-transform-produce loop: a consumer in group GROUP (static member INSTANCE,
         read_committed, no auto commit) reads IN; for each poll of up to 50 records a
         transactional producer (transactional.id TXID) begins a transaction, produces
         "out-<n>" for every input value "in-<n>" to OUT (same key), adds the consumer's
         positions with send_offsets_to_transaction and commits. A transaction that fails with
         an abortable error is aborted and the consumer rewound to the group's committed
         offsets, so its records are read again; retriable errors are retried. Runs until
         killed. Prints {"op":"ready"} once init_transactions returned, then per transaction
         {"op":"commit","n":records,"max":the greatest <n> of its input} or {"op":"abort","n":records,"err":...}.
  abort  a transactional producer (TXID) produces N records "ab-<i>" to OUT in one
         transaction, waits for their delivery (so they are in the log) and aborts; then a
         second transaction of N records "cm-<i>" is committed. Prints {"op":"aborted","n":N}
         and {"op":"committed","n":N}.
  read   reads every partition of TOPIC from the start with isolation.level ISOLATION
         (read_committed or read_uncommitted) until the end (partition EOF everywhere) and
         prints {"op":"read","values":[...]}.

Settings from the environment: BROKER (host:port) and the names above. A fatal error prints
{"op":"fatal","err":...} and exits 3; librdkafka's transient errors go to stderr."""
import os
import sys

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException,
                             Producer, TopicPartition)

from clientio import log, out


def fatal(what, err):
    out(op="fatal", err="%s: %s" % (what, err))
    sys.exit(3)


def on_error(err):
    # Transient conditions (a broker down) are reported here while librdkafka retries.
    log("error_cb: %s" % err)
    if err.fatal():
        fatal("error_cb", err)


base = {
    "bootstrap.servers": os.environ["BROKER"],
    "error_cb": on_error,
    "reconnect.backoff.ms": 50,
    "reconnect.backoff.max.ms": 500,
    "socket.connection.setup.timeout.ms": 3000,
    "topic.metadata.refresh.interval.ms": 2000,
}


def retrying(what, f):
    """Calls f until it succeeds or fails with an error that is not retriable. Returns None
    or the KafkaError that was not retriable (abortable or fatal)."""
    while True:
        try:
            f()
            return None
        except KafkaException as e:
            err = e.args[0]
            if err.fatal():
                fatal(what, err)
            if err.retriable() and not err.txn_requires_abort():
                log("%s: %s (retrying)" % (what, err))
                continue
            return err


def producer(txid):
    p = Producer(dict(base, **{
        "transactional.id": txid,
        "transaction.timeout.ms": 20000,
        "linger.ms": 5,
        "message.timeout.ms": 20000,
    }))
    err = retrying("init_transactions", lambda: p.init_transactions(30))
    if err is not None:
        fatal("init_transactions", err)
    return p


def rewind(c):
    """Seeks every assigned partition back to the group's committed offset."""
    parts = c.assignment()
    if not parts:
        return
    for tp in c.committed(parts, timeout=30):
        if tp.offset < 0:
            tp.offset = OFFSET_BEGINNING
        c.seek(tp)


def etl():
    c = Consumer(dict(base, **{
        "group.id": os.environ["GROUP"],
        "group.instance.id": os.environ["INSTANCE"],
        "session.timeout.ms": 10000,
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    }))
    c.subscribe([os.environ["IN"]])
    p = producer(os.environ["TXID"])
    out(op="ready")
    dst = os.environ["OUT"]
    while True:
        msgs = c.consume(num_messages=50, timeout=0.5)
        recs = []
        for m in msgs:
            if m.error():
                if m.error().fatal():
                    fatal("consume", m.error())
                log("consume: %s" % m.error())
                continue
            recs.append(m)
        if not recs:
            continue
        p.begin_transaction()
        failed = []
        for m in recs:
            v = m.value().decode()
            if not v.startswith("in-"):
                fatal("transform", "unexpected input %r" % v)
            while True:
                try:
                    p.produce(dst, key=m.key(), value=("out-" + v[3:]).encode(),
                              on_delivery=lambda err, _msg: err and failed.append(err))
                    break
                except BufferError:
                    p.poll(0.1)
        # The positions after this poll: what the next transaction starts from.
        err = retrying("send_offsets_to_transaction", lambda: p.send_offsets_to_transaction(
            c.position(c.assignment()), c.consumer_group_metadata(), 30))
        if err is None:
            err = retrying("commit_transaction", lambda: p.commit_transaction(30))
        if err is None and not failed:
            out(op="commit", n=len(recs), max=max(int(m.value()[3:]) for m in recs))
            continue
        if err is None:
            err = failed[0]
        if not err.txn_requires_abort() and not failed:
            fatal("transaction", err)
        out(op="abort", n=len(recs), err=str(err))
        aerr = retrying("abort_transaction", lambda: p.abort_transaction(30))
        if aerr is not None:
            fatal("abort_transaction", aerr)
        rewind(c)


def abort():
    n, dst = int(os.environ["N"]), os.environ["OUT"]
    p = producer(os.environ["TXID"])
    for prefix, commit in (("ab", False), ("cm", True)):
        p.begin_transaction()
        failed = []
        for i in range(n):
            p.produce(dst, key=b"%d" % i, value=("%s-%d" % (prefix, i)).encode(),
                      on_delivery=lambda err, _msg: err and failed.append(err))
        if p.flush(30) != 0 or failed:
            fatal("produce", failed or "flush timed out")
        if commit:
            err = retrying("commit_transaction", lambda: p.commit_transaction(30))
            if err is not None:
                fatal("commit_transaction", err)
            out(op="committed", n=n)
        else:
            err = retrying("abort_transaction", lambda: p.abort_transaction(30))
            if err is not None:
                fatal("abort_transaction", err)
            out(op="aborted", n=n)


def read():
    topic = os.environ["TOPIC"]
    c = Consumer(dict(base, **{
        "group.id": "txn-read",
        "isolation.level": os.environ["ISOLATION"],
        "enable.auto.commit": False,
        "enable.partition.eof": True,
    }))
    md = c.list_topics(topic, timeout=30).topics[topic]
    if md.error is not None:
        fatal("metadata", md.error)
    parts = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in md.partitions]
    c.assign(parts)
    pending, values = {tp.partition for tp in parts}, []
    while pending:
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                pending.discard(m.partition())
                continue
            fatal("consume", m.error())
        values.append(m.value().decode())
    c.close()
    out(op="read", values=values)


{"etl": etl, "abort": abort, "read": read}[sys.argv[1]]()
