/**
 * What the save indicator shows, from the server's "saved" acknowledgements.
 *
 * The server numbers the write messages (sync step 2 and update) each connection sends and
 * answers `[100][N]`: the first N are committed. We count the writes actually sent on the
 * current socket (counts restart with every socket) and compare. Edits made while no socket
 * is open are remembered until a new connection has synced and every write it sent is
 * acknowledged: the provider's sync step 2 on reconnect carries them.
 */

export type ConnectionStatus = 'connecting' | 'connected' | 'disconnected' | 'closed'
export type SaveState = 'connecting' | 'saved' | 'saving' | 'offline' | 'offline-unsaved' | 'closed' | 'refused'

type Listener = () => void

export class SaveTracker {
  status: ConnectionStatus = 'connecting'
  synced = false
  writesSent = 0
  writesSaved = 0
  /** Local edits not yet sent on any socket, or sent on a socket that closed unacknowledged. */
  unsentChanges = false
  closeReason = ''
  /** Why the server did not take a change of ours (it stays refused until a reload). */
  refusal = ''
  /** Whether any socket ever opened: before that we are connecting, after it offline. */
  everConnected = false
  private listeners: Listener[] = []

  onChange(listener: Listener): void {
    this.listeners.push(listener)
  }

  private emit(): void {
    for (const listener of this.listeners) listener()
  }

  socketCreated(): void {
    this.writesSent = 0
    this.writesSaved = 0
    this.emit()
  }

  wroteFrame(): void {
    this.writesSent += 1
    this.emit()
  }

  savedUpTo(count: number): void {
    this.writesSaved = Math.max(this.writesSaved, count)
    this.settle()
    this.emit()
  }

  /** A change made in this browser; `sent` when the provider could send it at once. */
  localChange(sent: boolean): void {
    if (!sent) this.unsentChanges = true
    this.emit()
  }

  setStatus(status: ConnectionStatus, reason = ''): void {
    if (status === 'disconnected' || status === 'closed') {
      if (this.writesSent > this.writesSaved) this.unsentChanges = true
      this.synced = false
    }
    this.status = status
    this.closeReason = reason
    this.emit()
  }

  refused(reason: string): void {
    this.refusal = reason
    this.emit()
  }

  setSynced(synced: boolean): void {
    this.synced = synced
    this.settle()
    this.emit()
  }

  private settle(): void {
    if (this.synced && this.writesSent > 0 && this.writesSaved >= this.writesSent) {
      this.unsentChanges = false
    }
  }

  get state(): SaveState {
    if (this.refusal) return 'refused'
    if (this.status === 'closed') return 'closed'
    if (this.status !== 'connected') {
      if (this.unsentChanges) return 'offline-unsaved'
      return this.everConnected ? 'offline' : 'connecting'
    }
    if (!this.synced) return 'connecting'
    return this.writesSent > this.writesSaved || this.unsentChanges ? 'saving' : 'saved'
  }
}
