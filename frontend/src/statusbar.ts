/** The connection state and the save state, announced politely to screen readers. */
import { h } from './dom'
import type { SaveTracker } from './savestate'

const CONNECTION_TEXT = {
  connecting: 'Connecting…',
  connected: 'Connected',
  disconnected: 'Offline',
  closed: 'Disconnected',
} as const

const SAVE_TEXT = {
  connecting: 'Loading…',
  saved: 'All changes saved',
  saving: 'Saving…',
  offline: 'Offline',
  'offline-unsaved': 'Offline — changes will sync when the connection returns',
  closed: 'Not connected',
  refused: 'Not saved',
} as const

export function statusBar(tracker: SaveTracker, editable: boolean): HTMLElement {
  const connection = h('span', { id: 'connection-state', class: 'connection-state' })
  const save = h('span', {
    id: 'save-state',
    class: 'save-state',
    role: 'status',
    'aria-live': 'polite',
    'aria-atomic': 'true',
  })
  const refusal = h('p', { id: 'refusal', class: 'refusal', role: 'alert', hidden: '' })
  // `data-state` follows the tracker at once; the text waits a moment before it says
  // "Saving…", so that a change acknowledged within milliseconds does not flicker or make
  // screen readers announce every keystroke.
  let savingTimer: number | undefined
  const update = (): void => {
    if (tracker.refusal && refusal.textContent !== tracker.refusal) {
      refusal.textContent = `Your change was not saved. ${tracker.refusal}.`
      refusal.hidden = false
    }
    const status = tracker.status
    connection.dataset.state = status
    connection.textContent = status === 'closed' && tracker.closeReason
      ? `Disconnected: ${tracker.closeReason}`
      : CONNECTION_TEXT[status]
    const state = editable ? tracker.state : 'readonly'
    save.dataset.state = state
    window.clearTimeout(savingTimer)
    if (state === 'saving') {
      savingTimer = window.setTimeout(() => { save.textContent = SAVE_TEXT.saving }, 600)
      return
    }
    const text = state === 'readonly' ? 'Read only' : SAVE_TEXT[state]
    if (save.textContent !== text) save.textContent = text
  }
  tracker.onChange(update)
  update()
  return h('div', { class: 'status-bar' }, connection, save, refusal)
}
