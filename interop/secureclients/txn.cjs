// kafkajs transactional produce against a gateway, for interop/kafka's txn_clients_test.go.
//
// A producer with transactionalId TXID (idempotent, one request in flight, as kafkajs requires
// for transactions) runs TXNS transactions one after another. Transaction t sends one
// sendBatch of N messages spread over TOPIC's partitions (key "<t>-<i>", value
// "js-<t>-<i>-commit" or "js-<t>-<i>-abort") and then commits, except every third (t % 3 == 2),
// which it aborts. Prints one JSON object a line: {"op":"commit"|"abort","txn":t,"n":N} after
// each transaction ended, then {"op":"done"}. Any error reaching the application prints
// {"op":"error","err":...} and exits 1. Settings from the environment: BROKER (host:port),
// TOPIC, TXID, TXNS, N, PARTITIONS.
const { Kafka, logLevel } = require('kafkajs')

const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`${k} not set`); return v }
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n')

const kafka = new Kafka({
  clientId: 'meshkafka-txn', brokers: [env('BROKER')],
  connectionTimeout: 3000, requestTimeout: 10000,
  logLevel: logLevel.WARN,
  logCreator: () => ({ label, namespace, log }) => {
    process.stderr.write(`${label} [${namespace}] ${log.message}\n`)
  },
})

async function main () {
  const topic = env('TOPIC')
  const txns = Number(env('TXNS'))
  const n = Number(env('N'))
  const partitions = Number(env('PARTITIONS'))
  const producer = kafka.producer({ transactionalId: env('TXID'), idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  for (let t = 0; t < txns; t++) {
    const commit = t % 3 !== 2
    const how = commit ? 'commit' : 'abort'
    const txn = await producer.transaction()
    const messages = []
    for (let i = 0; i < n; i++) {
      messages.push({ key: `${t}-${i}`, value: `js-${t}-${i}-${how}`, partition: i % partitions })
    }
    await txn.sendBatch({ topicMessages: [{ topic, messages }] })
    if (commit) await txn.commit(); else await txn.abort()
    out({ op: how, txn: t, n })
  }
  await producer.disconnect()
  out({ op: 'done' })
}

main().catch((err) => {
  out({ op: 'error', err: String(err && err.stack ? err.stack : err) })
  process.exit(1)
})
