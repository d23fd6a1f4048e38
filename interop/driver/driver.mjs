// driver.mjs: a Rust iroh 0.28.1 node (npm @number0/iroh) controlled over JSON lines.
//
// Run it ONLY inside a private network namespace with only loopback up: the Rust node tries to
// reach public relays and DNS. The Go harness (package interop/irohnode) starts it and speaks this
// protocol; see interop/irohnode/doc.go for the full command list.
//
// stdin:  one command per line   {"id": 7, "cmd": "connect", ...args}
// stdout: one reply per command  {"id": 7, "ok": true, ...result} or {"id": 7, "error": "..."}
//         and events             {"event": "accepted", ...}
// Binary payloads are base64; keys and topics are hex; node ids are iroh 0.28 base32 text.
// Anything else (logs) goes to stderr. EOF on stdin shuts every node down and exits.

import iroh from '@number0/iroh'
import readline from 'node:readline'
import crypto from 'node:crypto'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

const { Iroh, PublicKey, setLogLevel, BlobTicket, BlobFormat } = iroh

// Keep stdout for the protocol only.
console.log = (...a) => console.error(...a)

const nodes = new Map() // name -> { iroh, id }   (holding the Iroh object keeps the node alive)
const conns = new Map() // handle -> { conn, node, alpn }
const subs = new Map() // handle -> { sender, node }
let seq = 0
const handle = (p) => `${p}${++seq}`

function jsonSafe(_k, v) {
  if (typeof v === 'bigint') return Number(v)
  if (v instanceof Uint8Array) return Buffer.from(v).toString('base64')
  return v
}

function emit(obj) {
  process.stdout.write(JSON.stringify(obj, jsonSafe) + '\n')
}

// errText flattens an error to one line without the Rust backtrace.
function errText(e) {
  if (e === null || e === undefined) return 'unknown error'
  let s = e instanceof Error ? e.message || String(e) : String(e)
  const bt = s.indexOf('Stack backtrace:')
  if (bt >= 0) s = s.slice(0, bt)
  return s.replace(/\s+/g, ' ').trim()
}

// ---- deterministic payload -------------------------------------------------------------
// The pattern is a 1 MiB block, repeated: xorshift32 from seed 0x9E3779B9, each state written
// as 4 little-endian bytes. interop/irohnode.Pattern produces the same bytes in Go.
const BLOCK = 1 << 20
const block = (() => {
  const b = Buffer.alloc(BLOCK)
  let x = 0x9e3779b9
  for (let i = 0; i < BLOCK; i += 4) {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    b.writeUInt32LE(x, i)
  }
  return b
})()

async function writePattern(send, n, hash) {
  let rem = n
  while (rem > 0) {
    const k = Math.min(rem, BLOCK)
    const chunk = block.subarray(0, k)
    await send.writeAll(chunk)
    if (hash) hash.update(chunk)
    rem -= k
  }
}

// readAll reads a stream to its end; onChunk (optional) sees each chunk before the next read.
async function readAll(recv, onChunk) {
  const hash = crypto.createHash('sha256')
  const buf = Buffer.alloc(BLOCK)
  let total = 0
  for (;;) {
    const n = await recv.read(buf)
    if (n === null || n === undefined) break
    const k = Number(n)
    if (k === 0) continue
    const chunk = buf.subarray(0, k)
    hash.update(chunk)
    total += k
    if (onChunk) await onChunk(chunk)
  }
  return { bytes: total, sha256: hash.digest('hex') }
}

const EMPTY_SHA = crypto.createHash('sha256').digest('hex')

// ---- serving streams on a connection ------------------------------------------------------
// mode: echo | sink | source. See irohnode/doc.go for what each does on bi and uni streams.
async function serveStream(ctx, kind, mode, bi, uni) {
  const t0 = performance.now()
  const ev = { event: 'stream', node: ctx.node, conn: ctx.conn, alpn: ctx.alpn, kind, mode }
  try {
    const recv = kind === 'bi' ? bi.recv : uni
    let send = kind === 'bi' ? bi.send : null
    let sent = { bytes: 0, sha256: EMPTY_SHA }
    let got
    if (mode === 'echo') {
      if (!send) send = await ctx.c.openUni()
      const h = crypto.createHash('sha256')
      let out = 0
      got = await readAll(recv, async (chunk) => {
        await send.writeAll(chunk)
        h.update(chunk)
        out += chunk.length
      })
      await send.finish()
      sent = { bytes: out, sha256: h.digest('hex') }
    } else if (mode === 'sink') {
      got = await readAll(recv)
      if (send) {
        const reply = Buffer.from(`${got.bytes} ${got.sha256}\n`)
        await send.writeAll(reply)
        await send.finish()
      }
    } else if (mode === 'source') {
      const hdr = Buffer.alloc(8)
      await recv.readExact(hdr)
      const n = Number(hdr.readBigUInt64BE(0))
      got = { bytes: 8, sha256: crypto.createHash('sha256').update(hdr).digest('hex') }
      if (!send) send = await ctx.c.openUni()
      const h = crypto.createHash('sha256')
      await writePattern(send, n, h)
      await send.finish()
      sent = { bytes: n, sha256: h.digest('hex') }
    } else {
      throw new Error(`unknown mode ${mode}`)
    }
    if (kind === 'uni' || mode === 'source') {
      // Wait until the peer has every byte, so a connection close cannot lose the tail.
      if (send) await send.stopped().catch(() => {})
    }
    Object.assign(ev, {
      recvBytes: got.bytes,
      recvSha256: got.sha256,
      sentBytes: sent.bytes,
      sentSha256: sent.sha256,
      ms: performance.now() - t0,
    })
  } catch (e) {
    ev.error = errText(e)
  }
  emit(ev)
}

function serveConnection(ctx, mode) {
  const loop = async (kind) => {
    for (;;) {
      let s
      try {
        s = kind === 'bi' ? await ctx.c.acceptBi() : await ctx.c.acceptUni()
      } catch {
        return // connection closed
      }
      serveStream(ctx, kind, mode, kind === 'bi' ? s : null, kind === 'uni' ? s : null)
    }
  }
  loop('bi')
  loop('uni')
}

function watchClose(ctx) {
  ctx.c
    .closed()
    .then((reason) => emit({ event: 'closed', node: ctx.node, conn: ctx.conn, reason }))
    .catch((e) => emit({ event: 'closed', node: ctx.node, conn: ctx.conn, reason: errText(e) }))
}

function protocolHandler(nodeName, alpn, mode) {
  return (_err, _endpoint, _client) => ({
    accept: async (err, connecting) => {
      if (err) {
        emit({ event: 'acceptError', node: nodeName, alpn, error: errText(err) })
        return
      }
      let c
      try {
        c = await connecting.connect()
      } catch (e) {
        emit({ event: 'acceptError', node: nodeName, alpn, error: errText(e) })
        return
      }
      const h = handle('c')
      const ctx = { c, node: nodeName, conn: h, alpn }
      conns.set(h, { conn: c, node: nodeName, alpn })
      let remote = ''
      try {
        remote = c.getRemoteNodeId().toString()
      } catch (e) {
        remote = `error: ${errText(e)}`
      }
      emit({ event: 'accepted', node: nodeName, conn: h, alpn, remote, remoteAddr: c.remoteAddress() })
      watchClose(ctx)
      serveConnection(ctx, mode)
    },
    shutdown: () => {},
  })
}

// ---- commands ----------------------------------------------------------------------------
function getNode(name) {
  const n = nodes.get(name)
  if (!n) throw new Error(`no node ${name}`)
  return n
}

function getConn(h) {
  const c = conns.get(h)
  if (!c) throw new Error(`no connection ${h}`)
  return c
}

function toNodeAddr(a) {
  if (!a || !a.nodeId) throw new Error('addr.nodeId required')
  const out = { nodeId: a.nodeId, addresses: a.addresses || [] }
  if (a.relayUrl) out.relayUrl = a.relayUrl
  return out
}

async function transferOne(c, kind, bytes, request) {
  const t0 = performance.now()
  const sentHash = crypto.createHash('sha256')
  let sentBytes = bytes
  const payload = async (send) => {
    if (request) {
      const hdr = Buffer.alloc(8)
      hdr.writeBigUInt64BE(BigInt(bytes))
      await send.writeAll(hdr)
      sentHash.update(hdr)
      sentBytes = 8
    } else {
      await writePattern(send, bytes, sentHash)
    }
    await send.finish()
  }
  let got = { bytes: 0, sha256: EMPTY_SHA }
  if (kind === 'bi') {
    const bi = await c.openBi()
    const [, r] = await Promise.all([payload(bi.send), readAll(bi.recv)])
    got = r
  } else {
    const send = await c.openUni()
    await payload(send)
    await send.stopped()
  }
  return {
    sentBytes,
    sentSha256: sentHash.digest('hex'),
    recvBytes: got.bytes,
    recvSha256: got.sha256,
    ms: performance.now() - t0,
  }
}

const commands = {
  async create(a) {
    const name = a.name || handle('n')
    if (nodes.has(name)) throw new Error(`node ${name} exists`)
    const protocols = {}
    for (const [alpn, mode] of Object.entries(a.alpns || {})) {
      protocols[alpn] = protocolHandler(name, alpn, mode)
    }
    const opts = {
      nodeDiscovery: a.discovery === 'default' ? 'Default' : 'None',
      ipv4Addr: a.ipv4Addr || '127.0.0.1:0',
      ipv6Addr: a.ipv6Addr || '[::1]:0',
      protocols,
    }
    if (a.secretKey) {
      const k = Buffer.from(a.secretKey, 'hex')
      if (k.length !== 32) throw new Error('secretKey must be 32 bytes of hex')
      opts.secretKey = Array.from(k)
    }
    const node = await Iroh.memory(opts)
    const id = await node.net.nodeId()
    nodes.set(name, { iroh: node, id })
    const addr = await node.net.nodeAddr()
    return { name, nodeId: id, addresses: addr.addresses || [], relayUrl: addr.relayUrl || '' }
  },

  async nodeAddr(a) {
    const n = getNode(a.node)
    const addr = await n.iroh.net.nodeAddr()
    return { nodeId: addr.nodeId, addresses: addr.addresses || [], relayUrl: addr.relayUrl || '' }
  },

  // blobTicket makes a Rust BlobTicket for a node address (it embeds iroh's NodeAddr, the same
  // bytes as a NodeTicket after its variant byte); no node is needed.
  async blobTicket(a) {
    const t = new BlobTicket(toNodeAddr(a.addr), a.hash, BlobFormat.Raw)
    return { ticket: t.toString() }
  },

  // parseBlobTicket parses a ticket text with the Rust parser and returns its node address.
  async parseBlobTicket(a) {
    const t = BlobTicket.fromString(a.ticket)
    const n = t.nodeAddr
    return { nodeId: n.nodeId, relayUrl: n.relayUrl || '', addresses: n.addresses || [], hash: t.hash }
  },

  async addNodeAddr(a) {
    await getNode(a.node).iroh.net.addNodeAddr(toNodeAddr(a.addr))
    return {}
  },

  async remoteInfo(a) {
    const list = await getNode(a.node).iroh.net.remoteInfoList()
    return {
      remotes: list.map((r) => ({
        nodeId: PublicKey.fromBytes(Array.from(r.nodeId)).toString(),
        relayUrl: r.relayUrl || '',
        addrs: (r.addrs || []).map((d) => d.addr),
        connType: r.connType ? r.connType.type : '',
      })),
    }
  },

  async connect(a) {
    const n = getNode(a.node)
    const ep = n.iroh.node.endpoint()
    if (!ep) throw new Error('node has no endpoint')
    const t0 = performance.now()
    const c = await ep.connect(toNodeAddr(a.addr), Buffer.from(a.alpn))
    const ms = performance.now() - t0
    const h = handle('c')
    conns.set(h, { conn: c, node: a.node, alpn: a.alpn })
    const ctx = { c, node: a.node, conn: h, alpn: a.alpn }
    watchClose(ctx)
    if (a.serve) serveConnection(ctx, a.serve)
    return { conn: h, remote: c.getRemoteNodeId().toString(), remoteAddr: c.remoteAddress(), ms }
  },

  // transfer opens `streams` concurrent streams of `kind` and writes `bytes` pattern bytes on
  // each (or, with request, an 8-byte big-endian request for `bytes` bytes), then finishes.
  // Bi streams are read to their end at the same time; uni streams wait for the peer's ack.
  async transfer(a) {
    const { conn } = getConn(a.conn)
    const streams = a.streams || 1
    const t0 = performance.now()
    const results = await Promise.all(
      Array.from({ length: streams }, () => transferOne(conn, a.kind || 'bi', a.bytes || 0, !!a.request)),
    )
    const ms = performance.now() - t0
    const sent = results.reduce((s, r) => s + r.sentBytes, 0)
    const recv = results.reduce((s, r) => s + r.recvBytes, 0)
    const moved = Math.max(sent, recv)
    return { ms, sentBytes: sent, recvBytes: recv, mbps: moved / 1e6 / (ms / 1000), streams: results }
  },

  async closeConn(a) {
    const { conn } = getConn(a.conn)
    conn.close(BigInt(a.code || 0), Buffer.from(a.reason || ''))
    conns.delete(a.conn)
    return {}
  },

  async sendDatagram(a) {
    const { conn } = getConn(a.conn)
    await conn.sendDatagramWait(Buffer.from(a.data || '', 'base64'))
    return { maxSize: conn.maxDatagramSize() }
  },

  async readDatagram(a) {
    const { conn } = getConn(a.conn)
    const d = await conn.readDatagram()
    return { data: Buffer.from(d).toString('base64') }
  },

  async subscribe(a) {
    const n = getNode(a.node)
    const topic = Buffer.from(a.topic, 'hex')
    if (topic.length !== 32) throw new Error('topic must be 32 bytes of hex')
    const h = handle('s')
    const cb = (err, m) => {
      const ev = { event: 'gossip', node: a.node, sub: h }
      if (err) ev.type = 'error'
      else if (m.received) {
        ev.type = 'received'
        ev.content = Buffer.from(m.received.content).toString('base64')
        ev.from = m.received.deliveredFrom
      } else if (m.neighborUp) Object.assign(ev, { type: 'neighborUp', peer: m.neighborUp })
      else if (m.neighborDown) Object.assign(ev, { type: 'neighborDown', peer: m.neighborDown })
      else if (m.joined) Object.assign(ev, { type: 'joined', peers: m.joined })
      else if (m.lagged) ev.type = 'lagged'
      else ev.type = 'unknown'
      if (err) ev.error = errText(err)
      emit(ev)
    }
    const sender = await n.iroh.gossip.subscribe(Array.from(topic), a.bootstrap || [], cb)
    subs.set(h, { sender, node: a.node })
    return { sub: h }
  },

  async broadcast(a) {
    const s = subs.get(a.sub)
    if (!s) throw new Error(`no subscription ${a.sub}`)
    const data = Array.from(Buffer.from(a.data || '', 'base64'))
    if (a.neighbors) await s.sender.broadcastNeighbors(data)
    else await s.sender.broadcast(data)
    return {}
  },

  async unsubscribe(a) {
    const s = subs.get(a.sub)
    if (!s) throw new Error(`no subscription ${a.sub}`)
    subs.delete(a.sub)
    await s.sender.close()
    return {}
  },

  async shutdown(a) {
    const n = getNode(a.node)
    nodes.delete(a.node)
    await n.iroh.node.shutdown(!!a.force)
    return {}
  },

  async logLevel(a) {
    setLogLevel(a.level)
    return {}
  },

  async ping() {
    return { version: require('@number0/iroh/package.json').version, node: process.version }
  },
}

async function run(line) {
  let msg
  try {
    msg = JSON.parse(line)
  } catch (e) {
    emit({ event: 'protocolError', error: `bad json: ${errText(e)}` })
    return
  }
  const f = commands[msg.cmd]
  if (!f) {
    emit({ id: msg.id, error: `unknown command ${msg.cmd}` })
    return
  }
  try {
    const res = await f(msg)
    emit({ id: msg.id, ok: true, ...res })
  } catch (e) {
    emit({ id: msg.id, error: errText(e) })
  }
}

process.on('unhandledRejection', (e) => console.error('driver: unhandled rejection:', e))

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
rl.on('line', (line) => {
  if (line.trim() !== '') run(line)
})
rl.on('close', async () => {
  const all = [...nodes.values()]
  nodes.clear()
  await Promise.race([
    Promise.allSettled(all.map((n) => n.iroh.node.shutdown(false))),
    new Promise((r) => setTimeout(r, 2000)),
  ])
  process.exit(0)
})
emit({ event: 'ready', pid: process.pid })
