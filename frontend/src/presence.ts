/** Who is here: the `user` awareness state ({name, color, org}) of every connected client. */
import type { Awareness } from 'y-protocols/awareness'
import { h } from './dom'

interface AwarenessUser { name?: unknown; color?: unknown; org?: unknown }

export function presenceList(awareness: Awareness): HTMLElement {
  const list = h('ul', { class: 'presence-list', id: 'presence-list', 'aria-label': 'People here now' })
  const render = (): void => {
    const entries: HTMLElement[] = []
    const states = [...awareness.getStates().entries()].sort(([a], [b]) =>
      a === awareness.clientID ? -1 : b === awareness.clientID ? 1 : a - b)
    for (const [clientId, state] of states) {
      const user = (state as { user?: AwarenessUser }).user
      if (!user || typeof user.name !== 'string') continue
      const color = typeof user.color === 'string' && /^#[0-9a-fA-F]{6}$/.test(user.color) ? user.color : '#595959'
      const self = clientId === awareness.clientID
      const dot = h('span', { class: 'presence-dot', 'aria-hidden': 'true' })
      dot.style.backgroundColor = color
      const org = typeof user.org === 'string' && user.org ? ` (${user.org})` : ''
      entries.push(h('li', { class: 'presence-user', 'data-client-id': clientId, 'data-self': self },
        dot, h('span', { class: 'presence-name' }, `${user.name}${org}${self ? ' — you' : ''}`)))
    }
    list.replaceChildren(...entries)
  }
  awareness.on('change', render)
  render()
  return h('div', { class: 'presence' }, h('span', { class: 'presence-heading', id: 'presence-heading' }, 'Here now:'), list)
}
