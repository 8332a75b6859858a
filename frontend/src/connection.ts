/** One Y.Doc, one y-websocket provider, and the "saved" acknowledgements (message 100). */
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import * as decoding from 'lib0/decoding'
import { messageAuth } from 'y-websocket'
import type { EditorConfig } from './config'
import { SaveTracker } from './savestate'

export const MESSAGE_SAVED = 100

export interface Connection {
  doc: Y.Doc
  provider: WebsocketProvider
  tracker: SaveTracker
}

/** A WebSocket that tells the tracker about every write message it sends. */
function countingWebSocket(tracker: SaveTracker): typeof WebSocket {
  return class CountingWebSocket extends WebSocket {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols)
      tracker.socketCreated()
    }

    override send(data: string | ArrayBufferLike | Blob | ArrayBufferView): void {
      super.send(data)
      if (isWrite(data)) tracker.wroteFrame()
    }
  }
}

/** A sync step 2 ([0, 1, …]) or sync update ([0, 2, …]) message. */
function isWrite(data: unknown): boolean {
  let bytes: Uint8Array | null = null
  if (data instanceof Uint8Array) bytes = data
  else if (data instanceof ArrayBuffer) bytes = new Uint8Array(data)
  return bytes !== null && bytes.length >= 2 && bytes[0] === 0 && (bytes[1] === 1 || bytes[1] === 2)
}

export function connect(config: EditorConfig, tracker: SaveTracker): Connection {
  const doc = new Y.Doc()
  const params: Record<string, string> = { saved: '1' }
  if (config.token) params.token = config.token
  const provider = new WebsocketProvider(config.wsUrl, config.dpiaId, doc, {
    params,
    WebSocketPolyfill: countingWebSocket(tracker),
  })
  provider.messageHandlers[MESSAGE_SAVED] = (_encoder, decoder) => {
    tracker.savedUpTo(decoding.readVarUint(decoder))
  }
  provider.on('status', ({ status }) => {
    if (status === 'connected') tracker.everConnected = true
    tracker.setStatus(status)
  })
  provider.on('sync', (synced: boolean) => tracker.setSynced(synced))
  // The server says a write was not taken (a read-only role, a locked DPIA, or a change
  // outside what the template allows or over a size cap): show why, do not reconnect.
  provider.messageHandlers[messageAuth] = (_encoder, decoder) => {
    if (decoding.readVarUint(decoder) === 0) tracker.refused(decoding.readVarString(decoder))
  }
  if (config.tokenUrl) renewToken(provider, config.tokenUrl, config.tokenSeconds ?? 600)
  provider.on('closed', (event: { code: number; reason: string }) => {
    tracker.setStatus('closed', event.reason || `closed with code ${event.code}`)
  })
  doc.on('update', (_update: Uint8Array, origin: unknown) => {
    if (origin === provider) return
    const ws = provider.ws
    tracker.localChange(provider.wsconnected && ws !== null && ws.readyState === WebSocket.OPEN)
  })
  return { doc, provider, tracker }
}

/** Keep a short-lived token fresh so that a reconnect always presents a valid one. */
function renewToken(provider: WebsocketProvider, url: string, seconds: number): void {
  const every = Math.max(15, seconds / 2) * 1000
  const renew = async (): Promise<void> => {
    try {
      const response = await fetch(url, { credentials: 'same-origin', cache: 'no-store' })
      if (response.ok) {
        const body = (await response.json()) as { token?: string }
        if (body.token) provider.params.token = body.token
      }
    } catch {
      // Offline: the next round tries again; the server decides on reconnect.
    }
  }
  window.setInterval(() => { void renew() }, every)
}
