// Stock y-websocket providers (npm `y-websocket` + `yjs`, `ws` as the WebSocket) against a
// server, timed as a person meets them: from `new WebsocketProvider(...)` to its first
// `synced` event. Prints one JSON object on stdout and exits.
//
//   node client.js --server ws://127.0.0.1:PORT[/ws/dpia] --room DOC [--param KEY=VALUE ...]
//                  [--providers N] [--spread-ms MS] [--timeout-ms MS]
//
// Per provider it also notes when the socket opened (TCP + HTTP upgrade done) and when the
// frame holding sync step 2 arrived (before the provider decodes it), so that
// "created -> synced" splits into: connect, waiting for the server's answer, and the
// client's own decoding of that answer (Y.applyUpdate inside the provider's handler).
import { performance } from 'node:perf_hooks'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'

const args = { server: null, room: null, params: {}, providers: 1, spreadMs: 0, timeoutMs: 60000 }
const argv = process.argv.slice(2)
for (let i = 0; i < argv.length; i++) {
  const value = () => argv[++i]
  switch (argv[i]) {
    case '--server': args.server = value(); break
    case '--room': args.room = value(); break
    case '--providers': args.providers = Number(value()); break
    case '--spread-ms': args.spreadMs = Number(value()); break
    case '--timeout-ms': args.timeoutMs = Number(value()); break
    case '--param': {
      const [key, ...rest] = value().split('=')
      args.params[key] = rest.join('=')
      break
    }
    default: throw new Error(`unknown argument ${argv[i]}`)
  }
}
if (!args.server || !args.room) throw new Error('--server and --room are required')

// A sync step 2 message starts with varuint 0 (messageSync) then varuint 1 (step 2).
const isSyncStep2 = (data) => {
  const bytes = new Uint8Array(data)
  return bytes.length > 1 && bytes[0] === 0 && bytes[1] === 1
}

const runs = []
// Each provider listens for the process exit (to drop its awareness state).
process.setMaxListeners(0)

const start = () => {
  const doc = new Y.Doc()
  const run = { doc, created: performance.now(), open: null, step2: null, step2Bytes: 0, synced: null }
  // No BroadcastChannel: Node 20 has one, and providers of one room in one process would
  // otherwise sync with each other as browser tabs of one origin do, not as separate people.
  const provider = new WebsocketProvider(args.server, args.room, doc, {
    WebSocketPolyfill: WebSocket,
    params: args.params,
    disableBc: true
  })
  run.provider = provider
  const ws = provider.ws
  // Prepended: these run before the provider's own handlers (which decode the message).
  ws.prependListener('open', () => { run.open ??= performance.now() })
  ws.prependListener('message', (data) => {
    if (run.step2 === null && isSyncStep2(data)) {
      run.step2 = performance.now()
      run.step2Bytes = data.byteLength
    }
  })
  provider.on('synced', (synced) => {
    if (synced && run.synced === null) {
      run.synced = performance.now()
      maybeDone()
    }
  })
  runs.push(run)
}

let finished = false
const finish = (timedOut) => {
  if (finished) return
  finished = true
  const ms = (a, b) => (a === null || b === null ? null : b - a)
  const done = runs.filter((r) => r.synced !== null)
  const first = runs[0]
  const result = {
    providers: runs.length,
    synced: done.length,
    timed_out: timedOut,
    setup_ms: runs.map((r) => ms(r.created, r.synced)),
    open_ms: runs.map((r) => ms(r.created, r.open)),
    answer_ms: runs.map((r) => ms(r.open, r.step2)),
    decode_ms: runs.map((r) => ms(r.step2, r.synced)),
    step2_bytes: first ? first.step2Bytes : 0,
    // What the first provider holds: the bench's documents append to the root array `a`.
    items: first ? first.doc.getArray('a').length : 0
  }
  process.stdout.write(JSON.stringify(result) + '\n')
  for (const r of runs) r.provider.destroy()
  process.exit(0)
}

const maybeDone = () => {
  if (runs.length === args.providers && runs.every((r) => r.synced !== null)) finish(false)
}

setTimeout(() => finish(true), args.timeoutMs)
if (args.spreadMs > 0) {
  let made = 0
  const next = () => {
    start()
    if (++made < args.providers) setTimeout(next, args.spreadMs)
  }
  next()
} else {
  for (let i = 0; i < args.providers; i++) start()
}
