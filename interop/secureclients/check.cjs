// kafkajs over SASL_SSL against a running gateway: admin calls (create a topic, list topics),
// produce, and consume in a consumer group (join, fetch, commit). Settings from the
// environment: BROKER, CA (PEM file), USER, PASS, MECH (scram-sha-256, scram-sha-512, plain),
// TOPIC, GROUP. Prints "ok <n>" and exits 0 when every produced record came back.
const fs = require('fs')
const { Kafka, logLevel } = require('kafkajs')

const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`${k} not set`); return v }
const kafka = new Kafka({
  clientId: 'meshkafka-kafkajs', brokers: [env('BROKER')], logLevel: logLevel.WARN,
  ssl: { ca: [fs.readFileSync(env('CA'), 'utf-8')], servername: 'localhost' },
  sasl: { mechanism: env('MECH'), username: env('USER'), password: env('PASS') },
  connectionTimeout: 10000, requestTimeout: 30000,
})
const topic = env('TOPIC')

async function main () {
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true })
  const topics = await admin.listTopics()
  if (!topics.includes(topic)) throw new Error(`listTopics lacks ${topic}: ${topics}`)
  await admin.disconnect()

  const producer = kafka.producer()
  await producer.connect()
  const n = 10
  const messages = Array.from({ length: n }, (_, i) => ({ key: `k${i}`, value: `kafkajs-${i}` }))
  await producer.send({ topic, messages })
  await producer.disconnect()

  const consumer = kafka.consumer({ groupId: env('GROUP') })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const seen = new Set()
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`consumed only ${seen.size} of ${n}`)), 60000)
    consumer.run({
      eachMessage: async ({ message }) => {
        seen.add(message.value.toString())
        if (seen.size === n) { clearTimeout(timer); resolve() }
      },
    }).catch(reject)
  })
  await consumer.disconnect()
  console.log(`ok ${seen.size}`)
}

main().catch((e) => { console.error(e); process.exit(1) })
