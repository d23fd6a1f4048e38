"""confluent-kafka-python (librdkafka) over SASL_SSL against a running gateway: admin calls
(create a topic, list topics), produce, and consume in a consumer group (join, fetch, commit).
Settings from the environment: BROKER, CA, USER, PASS, MECH (SCRAM-SHA-256, SCRAM-SHA-512,
PLAIN), TOPIC, GROUP. Prints "ok <n>" and exits 0 when every produced record came back."""
import os
import sys
import time

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

conf = {
    "bootstrap.servers": os.environ["BROKER"],
    "security.protocol": "SASL_SSL",
    "ssl.ca.location": os.environ["CA"],
    "sasl.mechanisms": os.environ["MECH"],
    "sasl.username": os.environ["USER"],
    "sasl.password": os.environ["PASS"],
}
topic, n = os.environ["TOPIC"], 10

admin = AdminClient(conf)
for t, f in admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)]).items():
    f.result(timeout=30)
if topic not in admin.list_topics(timeout=30).topics:
    sys.exit("list_topics lacks " + topic)

p = Producer(conf)
errors = []
for i in range(n):
    p.produce(topic, key=b"k%d" % i, value=b"confluent-%d" % i,
              on_delivery=lambda err, msg: err and errors.append(err))
if p.flush(30) != 0 or errors:
    sys.exit("produce failed: %s" % errors)

c = Consumer(dict(conf, **{"group.id": os.environ["GROUP"], "auto.offset.reset": "earliest"}))
c.subscribe([topic])
seen, deadline = set(), time.time() + 60
while len(seen) < n and time.time() < deadline:
    m = c.poll(1.0)
    if m is None:
        continue
    if m.error():
        sys.exit("consume: %s" % m.error())
    seen.add(m.value())
c.commit(asynchronous=False)
c.close()
if len(seen) != n:
    sys.exit("consumed %d of %d" % (len(seen), n))
print("ok %d" % len(seen))
