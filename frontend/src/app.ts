/** Puts the editor together: header (title, presence, status), sections, comments. */
import type { EditorConfig } from './config'
import { canEdit } from './config'
import type { EditorContext } from './context'
import { connect, type Connection } from './connection'
import { h } from './dom'
import { presenceList } from './presence'
import { SaveTracker } from './savestate'
import { sectionView, type SectionView } from './section'
import { sidebar } from './sidebar'
import { statusBar } from './statusbar'
import { commentsPanel } from './comments'

export interface EditorApp {
  connection: Connection
  context: EditorContext
  showSection(sectionId: string, focus?: boolean): void
  destroy(): void
}

export function mountEditor(root: HTMLElement, config: EditorConfig): EditorApp {
  const template = config.template
  const tracker = new SaveTracker()
  const connection = connect(config, tracker)
  const { doc, provider } = connection
  // announce ourselves even before a rich-text editor (whose caret extension does it too) exists
  provider.awareness.setLocalStateField('user', {
    id: config.user.id, name: config.user.name, org: config.user.org, color: config.user.color,
  })

  const messages = h('div', { class: 'editor-messages', id: 'editor-messages', role: 'alert', 'aria-live': 'assertive' })
  let messageTimer: number | undefined
  const notify = (message: string): void => {
    messages.textContent = message
    window.clearTimeout(messageTimer)
    messageTimer = window.setTimeout(() => { messages.textContent = '' }, 6000)
  }

  const editable = canEdit(config.role) && !config.locked
  const context: EditorContext = {
    config, template, doc, provider, values: doc.getMap<unknown>('values'), editable, notify,
  }

  const nav = sidebar(template, doc, config.reviewStates ?? {})
  const main = h('main', { class: 'dpia-main', id: 'dpia-main' })
  const comments = commentsPanel(context)
  const header = h('div', { class: 'editor-header' },
    h('div', { class: 'editor-heading' },
      config.title ? h('h1', { class: 'dpia-title', id: 'dpia-title' }, config.title) : null,
      h('p', { class: 'dpia-meta' },
        h('span', { class: 'dpia-ref' }, config.dpiaId),
        ' · ',
        h('span', { class: 'dpia-role', 'data-role': config.role }, config.roleNote || (editable ? 'Editing' : 'Read only')))),
    presenceList(provider.awareness),
    statusBar(tracker, editable))

  root.classList.add('dpia-editor')
  root.replaceChildren(header, messages, h('div', { class: 'editor-body' }, nav.element, main, comments.element))

  let current: SectionView | null = null
  let currentId = ''
  const showSection = (sectionId: string, focus = false): void => {
    const section = template.sections.find((s) => s.id === sectionId) ?? template.sections[0]
    if (!section) return
    if (section.id !== currentId) {
      current?.destroy()
      current = sectionView(context, section)
      currentId = section.id
      main.replaceChildren(current.element)
      nav.setCurrent(section.id)
      comments.setSection(section)
      root.dataset.section = section.id
    }
    if (focus) current?.heading.focus()
  }
  const fromHash = (focus: boolean): void => showSection(decodeURIComponent(location.hash.slice(1)), focus)
  const onHashChange = (): void => fromHash(true)
  window.addEventListener('hashchange', onHashChange)
  fromHash(false)

  // leave cleanly, so others see us go at once rather than after the awareness timeout
  const onUnload = (): void => provider.awareness.setLocalState(null)
  window.addEventListener('pagehide', onUnload)

  return {
    connection,
    context,
    showSection,
    destroy: () => {
      window.removeEventListener('hashchange', onHashChange)
      window.removeEventListener('pagehide', onUnload)
      current?.destroy()
      provider.destroy()
      doc.destroy()
    },
  }
}
