// kafkajs through a partition leader's failover (interop/repl's ClientsLeaderKill): one role
// per process, argv[2]:
//
//   produce  an idempotent producer (acks -1, retrying without limit) sends the values 0..N-1,
//            one send at a time, to partition 0 of TOPIC. After PAUSE_AT acknowledged sends it
//            prints {"op":"paused"} and waits for a line on stdin (the test kills the leader
//            meanwhile), then sends the rest.
//   consume  a consumer in group GROUP reads TOPIC from the start until it has read the N
//            values, committing as kafkajs does by itself.
//
// Settings from the environment: BROKER (host:port), TOPIC, GROUP, N, PAUSE_AT. Everything the
// test checks is printed on stdout, one JSON object a line: {"op":"send",seq,value,ok,
// partition,offset,err}, {"op":"poll",partition,offset,value}, {"op":"reset",partition} (an
// assignment change), {"op":"commit",partition,offset}, {"op":"error",err} (an error that
// reached the application: a failed send, a consumer that stopped), {"op":"done"}. kafkajs'
// own log (its retries) goes to stderr. Exit status 0 unless an error reached the application.
const readline = require('readline')
const { Kafka, logLevel } = require('kafkajs')

const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`${k} not set`); return v }
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n')
const topic = env('TOPIC')
const n = Number(env('N'))

// The application's retry settings: retry for as long as the test lets the process run, at
// most 1 s apart (kafkajs' default gives up after 5 retries and ~30 s).
let lastProduceResponse = ''
const retry = { initialRetryTime: 100, maxRetryTime: 1000, retries: Number.MAX_SAFE_INTEGER }
const kafka = new Kafka({
  clientId: 'meshkafka-failover', brokers: [env('BROKER')], retry,
  connectionTimeout: 3000, requestTimeout: 10000,
  logLevel: logLevel.DEBUG,
  logCreator: () => ({ namespace, level, label, log }) => {
    if (level === logLevel.DEBUG) { // kept only to explain a send that resolves without metadata
      if (String(log.message).startsWith('Response Produce')) lastProduceResponse = JSON.stringify(log)
      return
    }
    if (level > logLevel.WARN) return
    process.stderr.write(`${new Date(log.timestamp).toISOString()} ${label} [${namespace}] ${log.message} ${JSON.stringify(Object.assign({}, log, { message: undefined, timestamp: undefined, logger: undefined }))}\n`)
  },
})

async function produce () {
  const pauseAt = Number(env('PAUSE_AT'))
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, retry })
  await producer.connect()
  const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]()
  let failed = 0
  for (let i = 0; i < n; i++) {
    if (i === pauseAt) {
      out({ op: 'paused' })
      await lines.next()
    }
    const value = String(i)
    try {
      const res = await producer.send({ topic, acks: -1, timeout: 30000, messages: [{ value, partition: 0 }] })
      if (!Array.isArray(res) || res.length !== 1) {
        // Resolved, but without the record's metadata: not an acknowledgement the test can place.
        process.stderr.write(`send ${i} resolved with ${JSON.stringify(res)}; the last Produce response: ${lastProduceResponse}\n`)
        throw new Error(`send resolved with ${JSON.stringify(res)}, not one RecordMetadata`)
      }
      out({ op: 'send', seq: i, value, ok: true, partition: res[0].partition, offset: Number(res[0].baseOffset) })
    } catch (e) {
      failed++
      out({ op: 'send', seq: i, value, ok: false, err: String(e) })
      out({ op: 'error', err: `send ${i}: ${e}` })
    }
  }
  await producer.disconnect()
  out({ op: 'done' })
  return failed === 0
}

async function consume () {
  const consumer = kafka.consumer({ groupId: env('GROUP'), retry, sessionTimeout: 30000, heartbeatInterval: 1000, maxWaitTimeInMs: 200 })
  const { GROUP_JOIN, COMMIT_OFFSETS, CRASH } = consumer.events
  let failed = false
  consumer.on(GROUP_JOIN, ({ payload }) => {
    for (const p of (payload.memberAssignment[topic] || [])) out({ op: 'reset', partition: p })
  })
  consumer.on(COMMIT_OFFSETS, ({ payload }) => {
    for (const t of payload.topics) {
      for (const p of t.partitions) out({ op: 'commit', partition: Number(p.partition), offset: Number(p.offset) })
    }
  })
  // A crash kafkajs restarts the consumer after is its own retry; one it does not is an error
  // the application sees.
  const stopped = new Promise((resolve) => consumer.on(CRASH, ({ payload }) => {
    process.stderr.write(`consumer crash (restart ${payload.restart}): ${payload.error}\n`)
    if (!payload.restart) {
      failed = true
      out({ op: 'error', err: `consumer crashed: ${payload.error}` })
      resolve()
    }
  }))
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const seen = new Set()
  let finished
  const all = new Promise((resolve) => { finished = resolve })
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      const value = message.value.toString()
      out({ op: 'poll', partition, offset: Number(message.offset), value })
      seen.add(value)
      if (seen.size >= n) finished()
    },
  })
  await Promise.race([all, stopped])
  await consumer.disconnect() // commits what was read
  out({ op: 'done' })
  return !failed
}

const roles = { produce, consume }
const role = roles[process.argv[2]]
if (!role) {
  console.error('usage: node failover.cjs produce|consume')
  process.exit(2)
}
role().then((ok) => process.exit(ok ? 0 : 1), (e) => {
  out({ op: 'error', err: String(e && e.stack ? e.stack : e) })
  process.exit(1)
})
