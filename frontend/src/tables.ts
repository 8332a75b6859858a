/**
 * A table field: each row a card of labelled controls bound to the row's Y.Map. Rows are
 * reconciled by id, so remote inserts and deletes never replace the control being typed in.
 */
import type * as Y from 'yjs'
import type { EditorContext } from './context'
import type { Column, Field, Option } from './template'
import { findField, tableName } from './template'
import { h, uid, slug } from './dom'
import { control, type Control } from './controls'
import { addRow, deleteRow, rowOptions, rowTitle, type Row } from './rows'
import { assessRisk } from './risk'
import { heatmaps, type Heatmaps } from './heatmap'

interface RowView {
  id: string
  element: HTMLElement
  update(): void
}

export interface TableView {
  element: HTMLElement
  destroy(): void
}

export function tableField(context: EditorContext, path: string, field: Field, headingId: string): TableView {
  const rows = context.doc.getArray<Row>(tableName(path))
  const prefix = field.row_prefix ?? 'R'
  const isRiskRegister = field.heatmap === true
  const views = new Map<string, RowView>()
  const list = h('div', { class: 'table-rows', 'data-table-rows': path })
  const emptyNote = h('p', { class: 'empty-note' }, 'No rows yet.')
  const cleanups: (() => void)[] = []

  // columns whose options are the rows of another table (risks ↔ measures ↔ operations)
  const sources = new Map<string, { field: Field; rows: Y.Array<Row> }>()
  for (const column of field.columns ?? []) {
    if (!column.options_from || sources.has(column.options_from)) continue
    const sourceField = findField(context.template, column.options_from)
    if (sourceField?.kind !== 'table') continue
    sources.set(column.options_from, { field: sourceField, rows: context.doc.getArray<Row>(tableName(column.options_from)) })
  }
  const optionsFor = (column: Column): Option[] | (() => Option[]) => {
    const source = column.options_from ? sources.get(column.options_from) : undefined
    return source ? () => rowOptions(source.field, source.rows) : column.options ?? []
  }

  const map: Heatmaps | null = isRiskRegister ? heatmaps(context.template.risk_matrix) : null

  const makeRow = (row: Row): RowView => {
    const id = String(row.get('id'))
    const titleId = uid('row-title')
    const refText = h('span', { class: 'row-ref' })
    const titleText = h('span', { class: 'row-title-text' })
    const controls: Control[] = (field.columns ?? []).map((column) => {
      const c = control(
        { kind: column.kind, label: column.label, guidance: column.guidance, options: optionsFor(column) },
        {
          get: () => row.get(column.id),
          set: (value) => (value === undefined ? row.delete(column.id) : row.set(column.id, value)),
        },
        context.editable,
      )
      c.element.dataset.column = column.id
      if (column.kind === 'longtext' || column.kind === 'multichoice') c.element.classList.add('wide')
      return c
    })
    const badges = h('div', { class: 'row-badges' })
    const deleteButton = context.editable
      ? h('button', { type: 'button', class: 'button button-danger', 'data-action': 'delete-row' }, 'Delete')
      : null
    deleteButton?.addEventListener('click', () => {
      const ref = String(row.get('ref') ?? '')
      const title = rowTitle(field, row)
      if (window.confirm(`Delete ${ref}${title ? ` “${title}”` : ''}? Everyone editing this DPIA will lose it.`)) {
        deleteRow(rows, id)
        context.notify(`${ref} deleted.`)
      }
    })
    const element = h('article', { class: 'row-card', 'data-row-id': id, 'aria-labelledby': titleId },
      h('div', { class: 'row-head' },
        h('h3', { class: 'row-title', id: titleId }, refText, ' ', titleText),
        badges,
        deleteButton),
      h('div', { class: 'row-grid' }, ...controls.map((c) => c.element)))
    const update = (): void => {
      const ref = String(row.get('ref') ?? '')
      element.dataset.ref = ref
      refText.textContent = ref
      titleText.textContent = rowTitle(field, row) || '(untitled)'
      deleteButton?.setAttribute('aria-label', `Delete ${ref}`)
      for (const c of controls) c.update()
      if (isRiskRegister) renderRiskBadges(context, row, badges)
    }
    update()
    return { id, element, update }
  }

  const reconcile = (): void => {
    const current = rows.toArray()
    const seen = new Set<string>()
    let previous: Element | null = null
    for (const row of current) {
      const id = row.get('id')
      if (typeof id !== 'string' || seen.has(id)) continue
      seen.add(id)
      let view = views.get(id)
      if (!view) {
        view = makeRow(row)
        views.set(id, view)
      } else {
        view.update()
      }
      const wanted: Element | null = previous ? previous.nextElementSibling : list.firstElementChild
      if (wanted !== view.element) list.insertBefore(view.element, wanted)
      previous = view.element
    }
    for (const [id, view] of views) {
      if (!seen.has(id)) {
        view.element.remove()
        views.delete(id)
      }
    }
    emptyNote.hidden = views.size > 0
    map?.update(current.map((row) => (key: string) => row.get(key)))
  }

  const observer = (): void => reconcile()
  rows.observeDeep(observer)
  cleanups.push(() => rows.unobserveDeep(observer))
  for (const source of sources.values()) {
    if (source.rows === rows) continue
    const refresh = (): void => { for (const view of views.values()) view.update() }
    source.rows.observeDeep(refresh)
    cleanups.push(() => source.rows.unobserveDeep(refresh))
  }

  const addButton = context.editable
    ? h('button', {
      type: 'button',
      class: 'button',
      'data-action': 'add-row',
      'data-table': path,
    }, `Add a ${field.row_noun ?? 'row'}`)
    : null
  addButton?.addEventListener('click', () => {
    const id = addRow(context.doc, rows, prefix)
    const view = views.get(id)
    view?.element.querySelector<HTMLElement>('input, textarea, select')?.focus()
    view?.element.scrollIntoView({ block: 'nearest' })
  })

  const guidance = field.guidance ? h('p', { class: 'guidance' }, field.guidance) : null
  const element = h('div', { class: 'field table-field', 'data-field': path, 'data-kind': 'table', id: `field-${slug(path)}` },
    h('h3', { class: 'field-label', id: headingId }, field.label),
    guidance,
    map?.element ?? null,
    list,
    emptyNote,
    addButton)
  reconcile()
  return { element, destroy: () => { for (const cleanup of cleanups) cleanup() } }
}

function renderRiskBadges(context: EditorContext, row: Row, badges: HTMLElement): void {
  const assessment = assessRisk(context.template.risk_matrix, (key) => row.get(key))
  const badge = (which: string, label: string, level: { id: string; label: string; color: string; text_color: string } | null, score: number | null, note = ''): HTMLElement => {
    const text = level ? `${label}: ${level.label}${score !== null ? ` (${score})` : ''}${note}` : `${label}: not rated`
    const element = h('span', { class: 'level-badge', 'data-level-of': which, 'data-level': level?.id ?? 'none' }, text)
    if (level) {
      element.style.backgroundColor = level.color
      element.style.color = level.text_color
    }
    return element
  }
  badges.replaceChildren(
    badge('inherent', 'Risk', assessment.level, assessment.overridden ? null : assessment.inherent?.score ?? null,
      assessment.overridden ? ' — overridden' : ''),
    badge('residual', 'Residual', assessment.residual?.level ?? null, assessment.residual?.score ?? null),
  )
  if (assessment.overrideWithoutReason) {
    badges.appendChild(h('span', { class: 'warning-text', 'data-warning': 'override-reason' },
      'The override is not applied until a reason is given.'))
  }
}
