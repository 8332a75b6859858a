#!/usr/bin/env node
// A stock y-websocket client (WebsocketProvider + yjs) driven over stdin/stdout JSON lines.
//
//   node tests/node/yclient.mjs --url ws://127.0.0.1:PORT/ws/dpia --room DOCID
//        [--token TOKEN] [--saved] [--param KEY=VALUE ...] [--max-backoff MS]
//
// stdout carries only JSON lines: events ({"event": ...}) and one answer per command
// ({"ok": true, "id": ..., ...} or {"ok": false, "id": ..., "error": "..."}).
// stdin takes one JSON command per line; see README.md for the list. End of stdin = quit.
// Anything else (library warnings, console output) goes to stderr.

import * as readline from 'node:readline'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import * as decoding from 'lib0/decoding'

// Keep stdout clean for the protocol: anything a library logs goes to stderr.
console.log = console.error
console.info = console.error

// If whoever reads our stdout has gone (EPIPE), there is no one left to talk to: exit at
// once rather than report the failed write, which would fail again, and so on.
let stdoutGone = false
const stdoutIsGone = () => {
  if (stdoutGone) return
  stdoutGone = true
  process.exit(0) // the server sees the socket drop, as it would for a killed browser
}
process.stdout.on('error', stdoutIsGone)

const write = (obj) => {
  if (!stdoutGone) process.stdout.write(JSON.stringify(obj) + '\n')
}
const emit = (event, fields = {}) => write({ event, ...fields })

const reportUncaught = (err) => {
  if (err && err.code === 'EPIPE') return stdoutIsGone()
  emit('error', { error: String(err && err.stack ? err.stack : err) })
}
process.on('uncaughtException', reportUncaught)
process.on('unhandledRejection', reportUncaught)

// ---------------------------------------------------------------------------------------
// Arguments

const parseArgs = (argv) => {
  const opts = { url: null, room: null, token: null, saved: false, params: {}, maxBackoff: 2500 }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${arg} needs a value`)
      return argv[++i]
    }
    if (arg === '--url') opts.url = next()
    else if (arg === '--room') opts.room = next()
    else if (arg === '--token') opts.token = next()
    else if (arg === '--saved') opts.saved = true
    else if (arg === '--max-backoff') opts.maxBackoff = Number(next())
    else if (arg === '--param') {
      const kv = next()
      const eq = kv.indexOf('=')
      if (eq < 1) throw new Error(`--param wants KEY=VALUE, got ${kv}`)
      opts.params[kv.slice(0, eq)] = kv.slice(eq + 1)
    } else throw new Error(`unknown argument ${arg}`)
  }
  if (!opts.url || !opts.room) throw new Error('--url and --room are required')
  return opts
}

let opts
try {
  opts = parseArgs(process.argv.slice(2))
} catch (err) {
  process.stderr.write(`yclient: ${err.message}\n`)
  process.exit(2)
}

// ---------------------------------------------------------------------------------------
// Write counting for "saved" acknowledgements.
//
// The server counts, per connection, every sync step-2 and sync update message it receives
// from us ("write messages") and answers with [varuint 100][varuint N]: the first N of them
// are committed. Rather than guessing which doc updates the provider managed to send, we
// count exactly what goes over the wire: the provider is given `ws`'s WebSocket, subclassed
// only to look at outgoing frames. Counts restart with every new socket, as on the server.

const conn = {
  number: 0, // how many sockets the provider has opened so far
  socket: null, // the current one
  writes: 0, // write messages sent on the current socket
  saved: 0 // highest N acknowledged on the current socket
}
const savedWaiters = new Set()

const countWrites = (data) => {
  let bytes
  if (data instanceof Uint8Array) bytes = data
  else if (data instanceof ArrayBuffer) bytes = new Uint8Array(data)
  else return
  // The provider sends exactly one message per frame: [0 sync][0 step1 | 1 step2 | 2 update].
  const decoder = decoding.createDecoder(bytes)
  if (!decoding.hasContent(decoder)) return
  if (decoding.readVarUint(decoder) !== 0) return
  const step = decoding.readVarUint(decoder)
  if (step === 1 || step === 2) conn.writes++
}

class CountingWebSocket extends WebSocket {
  constructor (...args) {
    super(...args)
    conn.number++
    conn.socket = this
    conn.writes = 0
    conn.saved = 0
  }

  send (data, ...rest) {
    if (this.readyState === WebSocket.OPEN) {
      try {
        countWrites(data)
      } catch (err) {
        emit('error', { error: `counting an outgoing frame: ${err}` })
      }
    }
    return super.send(data, ...rest)
  }
}

// ---------------------------------------------------------------------------------------
// Doc and provider

const doc = new Y.Doc()
const params = { ...opts.params }
if (opts.token !== null) params.token = opts.token
if (opts.saved) params.saved = '1'

const provider = new WebsocketProvider(opts.url, opts.room, doc, {
  WebSocketPolyfill: CountingWebSocket,
  params,
  connect: false,
  disableBc: true,
  maxBackoffTime: opts.maxBackoff
})

// Permission denied (message type 2, auth): report it, then let the stock handler run too.
const stockAuthHandler = provider.messageHandlers[2]
provider.messageHandlers[2] = (encoder, decoder, prov, emitSynced, messageType) => {
  try {
    const peek = decoding.createDecoder(decoder.arr)
    peek.pos = decoder.pos
    const kind = decoding.readVarUint(peek)
    const reason = kind === 0 ? decoding.readVarString(peek) : null
    emit('permission-denied', { kind, reason })
  } catch (err) {
    emit('error', { error: `decoding an auth message: ${err}` })
  }
  stockAuthHandler(encoder, decoder, prov, emitSynced, messageType)
}

// Saved acknowledgement (message type 100, OpenDPIA's own): [varuint 100][varuint N].
provider.messageHandlers[100] = (_encoder, decoder, _prov, _emitSynced, _messageType) => {
  const n = decoding.readVarUint(decoder)
  if (n > conn.saved) conn.saved = n
  emit('saved', { count: n, writes: conn.writes, connection: conn.number })
  for (const check of savedWaiters) check()
}

provider.on('status', ({ status }) => emit('status', { status }))
provider.on('sync', (synced) => {
  if (synced) emit('synced')
})
// `event` is the socket's CloseEvent, or null when we closed it ourselves (disconnect/quit).
provider.on('connection-close', (event) => {
  if (event == null) emit('closed', { code: null, reason: null, local: true })
  else emit('closed', { code: event.code, reason: event.reason, local: false })
})
// Close codes 4400-4499: the stock provider stops reconnecting and emits 'closed'.
provider.on('closed', ({ code, reason }) => emit('gave-up', { code, reason }))
provider.on('connection-error', (event) => {
  emit('connection-error', { error: String((event && (event.message || event.error)) || event) })
})

const awarenessStates = () => {
  const states = {}
  for (const [clientId, state] of provider.awareness.getStates()) states[clientId] = state
  return states
}
provider.awareness.on('change', () => emit('awareness', { states: awarenessStates() }))

// ---------------------------------------------------------------------------------------
// Commands

const b64 = (u8) => Buffer.from(u8).toString('base64')

const texts = (names = []) => {
  const out = {}
  for (const name of names) out[name] = doc.getText(name).toString()
  return out
}
const maps = (names = []) => {
  const out = {}
  for (const name of names) out[name] = doc.getMap(name).toJSON()
  return out
}

// How long a wait_* command waits unless told: generous, as the tests share a busy machine
// (the Python side waits a little longer, so that this timeout is the one reported).
const WAIT_MS = 30000

// Resolve once `check()` returns a result other than undefined; re-checked after every
// transaction on the doc. Rejects after timeout_ms.
const waitForDoc = (check, timeoutMs, what) => waitFor(
  (listener) => doc.on('afterTransaction', listener),
  (listener) => doc.off('afterTransaction', listener),
  check, timeoutMs, what)

const waitFor = (register, unregister, check, timeoutMs, what) => new Promise((resolve, reject) => {
  const first = check()
  if (first !== undefined) return resolve(first)
  const listener = () => {
    const result = check()
    if (result !== undefined) {
      cleanup()
      resolve(result)
    }
  }
  const timer = setTimeout(() => {
    cleanup()
    reject(new Error(`timeout after ${timeoutMs} ms waiting for ${what()}`))
  }, timeoutMs)
  const cleanup = () => {
    clearTimeout(timer)
    unregister(listener)
  }
  register(listener)
})

const savedReport = () => ({ saved: conn.saved, writes: conn.writes, connection: conn.number })

let quitting = false
const quit = async (code = 0) => {
  if (quitting) return
  quitting = true
  const socket = conn.socket
  provider.destroy() // sends our awareness removal, then closes the socket
  doc.destroy()
  if (socket && socket.readyState !== WebSocket.CLOSED) {
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, 1000)
      socket.once('close', () => {
        clearTimeout(timer)
        resolve()
      })
    })
  }
  process.exit(code)
}

const commands = {
  insert: ({ name = 't', index = 0, text }) => {
    doc.getText(name).insert(index, String(text))
    return {}
  },
  delete: ({ name = 't', index = 0, length }) => {
    doc.getText(name).delete(index, length)
    return {}
  },
  set: ({ map = 'values', key, value }) => {
    doc.getMap(map).set(key, value)
    return {}
  },
  unset: ({ map = 'values', key }) => {
    doc.getMap(map).delete(key)
    return {}
  },
  get: ({ texts: t = [], maps: m = [] }) => ({ texts: texts(t), maps: maps(m) }),
  wait_text: ({ name = 't', equals, timeout_ms: timeoutMs = WAIT_MS }) => {
    const text = doc.getText(name)
    return waitForDoc(
      () => (text.toString() === equals ? { text: equals } : undefined),
      timeoutMs,
      () => `text ${JSON.stringify(name)} to equal ${JSON.stringify(equals)}; ` +
        `it is ${JSON.stringify(text.toString())}`
    )
  },
  wait_map: ({ map = 'values', key, equals, timeout_ms: timeoutMs = WAIT_MS }) => {
    const ymap = doc.getMap(map)
    const matches = () => {
      if (!ymap.has(key)) return undefined
      const value = ymap.toJSON()[key]
      if (equals !== undefined && JSON.stringify(value) !== JSON.stringify(equals)) return undefined
      return { value }
    }
    return waitForDoc(matches, timeoutMs, () => `key ${JSON.stringify(key)} in map ` +
      `${JSON.stringify(map)}` + (equals !== undefined ? ` to equal ${JSON.stringify(equals)}` : '') +
      `; map is ${JSON.stringify(ymap.toJSON())}`)
  },
  awareness: ({ state = null }) => {
    provider.awareness.setLocalState(state)
    return { clientID: doc.clientID }
  },
  awareness_states: () => ({ states: awarenessStates() }),
  disconnect: () => {
    provider.disconnect()
    return {}
  },
  connect: () => {
    provider.connect()
    return {}
  },
  status: () => ({
    clientID: doc.clientID,
    connected: provider.wsconnected,
    connecting: provider.wsconnecting,
    synced: provider.synced,
    shouldConnect: provider.shouldConnect,
    url: provider.url,
    ...savedReport()
  }),
  wait_synced: ({ timeout_ms: timeoutMs = WAIT_MS }) => waitFor(
    (l) => provider.on('sync', l),
    (l) => provider.off('sync', l),
    () => (provider.synced ? {} : undefined),
    timeoutMs,
    () => 'the provider to sync'
  ),
  state: () => ({
    stateVector: b64(Y.encodeStateVector(doc)),
    update: b64(Y.encodeStateAsUpdate(doc))
  }),
  apply: ({ update }) => {
    Y.applyUpdate(doc, new Uint8Array(Buffer.from(update, 'base64')), 'harness')
    return {}
  },
  saved_count: () => savedReport(),
  // Resolves once every write message sent on the current connection is acknowledged
  // (saved >= writes, with at least `min_writes` writes sent).
  wait_saved: ({ min_writes: minWrites = 1, timeout_ms: timeoutMs = WAIT_MS }) => waitFor(
    (l) => savedWaiters.add(l),
    (l) => savedWaiters.delete(l),
    () => (conn.writes >= minWrites && conn.saved >= conn.writes ? savedReport() : undefined),
    timeoutMs,
    () => `saved acknowledgements (${JSON.stringify(savedReport())})`
  ),
  quit: () => ({})
}

const handleLine = async (line) => {
  if (!line.trim()) return
  let msg
  try {
    msg = JSON.parse(line)
  } catch (err) {
    write({ ok: false, id: null, error: `bad JSON: ${err.message}` })
    return
  }
  const id = msg && typeof msg === 'object' && 'id' in msg ? msg.id : null
  try {
    const fn = msg && Object.hasOwn(commands, msg.cmd) ? commands[msg.cmd] : null
    if (!fn) throw new Error(`unknown command ${JSON.stringify(msg && msg.cmd)}`)
    const result = await fn(msg)
    write({ ok: true, id, ...result })
    if (msg.cmd === 'quit') await quit(0)
  } catch (err) {
    write({ ok: false, id, error: err && err.message ? err.message : String(err) })
  }
}

const rl = readline.createInterface({ input: process.stdin, terminal: false })
rl.on('line', (line) => { handleLine(line) })
rl.on('close', () => { quit(0) })

emit('ready', { clientID: doc.clientID, url: provider.url })
provider.connect()
