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

  const nav = sidebar(template, doc, config.reviewStates ?? {}, provider)
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

  // Focus is never hidden behind the sticky header (WCAG 2.4.11): the page scrolls what is
  // focused clear of it, by its height as it is now (it wraps on narrower screens).
  const headerHeight = (): void => {
    document.documentElement.style.setProperty('--editor-header-height', `${header.offsetHeight}px`)
  }
  const resizing = new ResizeObserver(headerHeight)
  resizing.observe(header)
  headerHeight()

  // Printing prints the whole DPIA: every other section is drawn, read-only, around the one
  // shown while the page prints (Ctrl+P fires beforeprint; print emulation changes the media).
  let printing: SectionView[] = []
  const beforePrint = (): void => {
    if (printing.length > 0) return
    const readOnly: EditorContext = { ...context, editable: false }
    main.replaceChildren(...template.sections.map((section) => {
      if (section.id === currentId && current) return current.element
      const view = sectionView(readOnly, section)
      printing.push(view)
      return view.element
    }))
  }
  const afterPrint = (): void => {
    for (const view of printing.splice(0)) {
      view.destroy()
      view.element.remove()
    }
  }
  const printMedia = window.matchMedia('print')
  const onPrintMedia = (): void => (printMedia.matches ? beforePrint() : afterPrint())
  window.addEventListener('beforeprint', beforePrint)
  window.addEventListener('afterprint', afterPrint)
  printMedia.addEventListener('change', onPrintMedia)

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
      window.removeEventListener('beforeprint', beforePrint)
      window.removeEventListener('afterprint', afterPrint)
      printMedia.removeEventListener('change', onPrintMedia)
      resizing.disconnect()
      afterPrint()
      current?.destroy()
      provider.destroy()
      doc.destroy()
    },
  }
}
