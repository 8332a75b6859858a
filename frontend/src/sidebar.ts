/** The list of sections, each with its status; links change the section shown. */
import type * as Y from 'yjs'
import type { Template } from './template'
import { h } from './dom'
import { sectionStatus } from './status'

const STATUS_TEXT = { empty: 'Empty', 'in-progress': 'In progress' } as const
// Review states recorded on the server (docs/signoff-and-history.md); the others read locally.
const REVIEW_TEXT: Record<string, string> = {
  submitted: 'Submitted',
  changes_requested: 'Changes requested',
  reviewed: 'Reviewed',
  signed_off: 'Signed off',
  stale: 'Changed since sign-off',
}

export interface Sidebar {
  element: HTMLElement
  setCurrent(sectionId: string): void
}

export function sidebar(template: Template, doc: Y.Doc, review: Record<string, string> = {}): Sidebar {
  const items = template.sections.map((section) => {
    const status = h('span', { class: 'section-status' })
    const link = h('a', { href: `#${section.id}`, class: 'section-link', 'data-section': section.id },
      h('span', { class: 'section-link-title', title: section.title }, section.short_title ?? section.title),
      h('span', { class: 'visually-hidden' }, ': '),
      status,
      REVIEW_TEXT[review[section.id] ?? ''] !== undefined
        ? h('span', { class: 'section-review', 'data-review': review[section.id] ?? '' },
          h('span', { class: 'visually-hidden' }, ', '), REVIEW_TEXT[review[section.id] ?? ''])
        : null)
    return { section, link, status }
  })
  const element = h('nav', { class: 'sidebar', id: 'dpia-sections', 'aria-label': 'DPIA sections' },
    h('h2', { class: 'sidebar-title' }, 'Sections'),
    h('ol', { class: 'section-list' }, ...items.map((item) => h('li', {}, item.link))))

  const refresh = (): void => {
    for (const item of items) {
      const status = sectionStatus(doc, item.section)
      item.link.dataset.status = status
      item.status.textContent = STATUS_TEXT[status]
    }
  }
  // statuses are recomputed at most a few times a second, however fast the document changes
  let scheduled = false
  doc.on('afterTransaction', () => {
    if (scheduled) return
    scheduled = true
    window.setTimeout(() => {
      scheduled = false
      refresh()
    }, 250)
  })
  refresh()
  return {
    element,
    setCurrent: (sectionId) => {
      for (const item of items) {
        if (item.section.id === sectionId) item.link.setAttribute('aria-current', 'page')
        else item.link.removeAttribute('aria-current')
      }
    },
  }
}
