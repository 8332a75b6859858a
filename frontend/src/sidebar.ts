/**
 * The list of sections, each with its status (the GOV.UK task list's look); links change
 * the section shown. On a narrow screen the list folds into a "Sections" disclosure that
 * names the section shown, and closes once one is chosen.
 *
 * A section's status is read from the document, so until the first sync with the server it
 * would say "Empty" of sections that are not: each shows "Loading" until then.
 */
import type * as Y from 'yjs'
import type { Template } from './template'
import { h } from './dom'
import { sectionStatus, type SectionState } from './status'

const STATUS_TEXT = { empty: 'Empty', 'in-progress': 'In progress', loading: 'Loading' } as const
const NARROW = '(max-width: 60rem)'
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

/** What the sidebar needs of the provider: whether, and when, the document first synced. */
export interface SyncSource {
  synced: boolean
  on(event: 'sync', listener: (synced: boolean) => void): void
}

export function sidebar(template: Template, doc: Y.Doc, review: Record<string, string>, source: SyncSource): Sidebar {
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
  const current = h('span', { class: 'sidebar-current' })
  const details = h('details', { class: 'sidebar-details' },
    h('summary', { class: 'sidebar-summary' }, 'Sections', current),
    h('ol', { class: 'section-list' }, ...items.map((item) => h('li', {}, item.link))))
  const element = h('nav', { class: 'sidebar', id: 'dpia-sections', 'aria-label': 'DPIA sections' },
    h('h2', { class: 'sidebar-title' }, 'Sections'),
    details)
  // Open beside the document on a wide screen, folded on a narrow one.
  const narrow = window.matchMedia(NARROW)
  const fold = (): void => { (details as HTMLDetailsElement).open = !narrow.matches }
  narrow.addEventListener('change', fold)
  fold()
  element.addEventListener('click', (event) => {
    if (narrow.matches && (event.target as Element).closest('a.section-link')) (details as HTMLDetailsElement).open = false
  })

  let synced = source.synced
  const refresh = (): void => {
    for (const item of items) {
      const status: SectionState = synced ? sectionStatus(doc, item.section) : 'loading'
      item.link.dataset.status = status
      item.status.textContent = STATUS_TEXT[status]
    }
  }
  source.on('sync', (now: boolean) => {
    if (!now || synced) return
    synced = true
    refresh()
  })
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
        if (item.section.id === sectionId) {
          item.link.setAttribute('aria-current', 'page')
          current.textContent = `: ${item.section.short_title ?? item.section.title}`
        } else {
          item.link.removeAttribute('aria-current')
        }
      }
    },
  }
}
