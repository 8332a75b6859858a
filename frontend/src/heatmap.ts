/**
 * Heat maps of the risk register, one per map of the template's `risk_matrix.heatmap`
 * (before and after measures). The grid comes from `heatGrid` (risk.ts), which follows the
 * same definition as the exports; the markup matches the past-version page
 * (server/web/templates/_heatmaps.html), data attributes included.
 */
import type { RiskMatrix } from './template'
import { h } from './dom'
import { heatGrid, type HeatCell, type HeatGrid, type RowValues } from './risk'

export interface Heatmaps {
  element: HTMLElement
  update(rows: RowValues[]): void
}

export function heatmaps(matrix: RiskMatrix): Heatmaps {
  const slots = matrix.heatmap.maps.map((spec) => ({ spec, slot: h('div', { class: 'heatmap-slot' }) }))
  const element = h('div', { class: 'heatmaps', id: 'risk-heatmaps' }, ...slots.map((s) => s.slot))
  const update = (rows: RowValues[]): void => {
    for (const { spec, slot } of slots) slot.replaceChildren(table(matrix, heatGrid(matrix, spec, rows)))
  }
  update([])
  return { element, update }
}

export function describeCell(matrix: RiskMatrix, cell: HeatCell): string {
  const rowScale = matrix.heatmap.rows.scale
  const [first, second] = rowScale === 'severity'
    ? [`Severity ${cell.severity.label}`, `likelihood ${cell.likelihood.label}`]
    : [`Likelihood ${cell.likelihood.label}`, `severity ${cell.severity.label}`]
  const count = cell.refs.length
  return `${first}, ${second}, ${cell.level ? `${cell.level.label} risk` : 'no level'}: `
    + (count === 0 ? 'no risks' : `${count} ${count === 1 ? 'risk' : 'risks'} (${cell.refs.join(', ')})`)
}

function table(matrix: RiskMatrix, map: HeatGrid): HTMLElement {
  const head = h('tr', {},
    h('th', { scope: 'col', class: 'corner' }, h('span', { class: 'axis-note' }, matrix.heatmap.corner)),
    ...map.columns.map((point) => h('th', { scope: 'col' }, point.label)))
  const body = map.grid.map((cells, index) => h('tr', {},
    h('th', { scope: 'row' }, map.rows[index]!.label),
    ...cells.map((cell) => {
      const description = describeCell(matrix, cell)
      const element = h('td', {
        class: `heatmap-cell${cell.refs.length === 0 ? ' is-empty' : ''}`,
        'data-likelihood': cell.likelihood.value,
        'data-severity': cell.severity.value,
        'data-level': cell.level?.id ?? 'none',
        'data-refs': cell.refs.join(' '),
        title: description,
      },
      h('span', { class: 'visually-hidden' }, description),
      h('span', { class: 'heatmap-level', 'aria-hidden': 'true' }, cell.level?.label ?? ''),
      h('span', { class: 'heatmap-refs', 'aria-hidden': 'true' }, cell.refs.join(', ')))
      if (cell.level) {
        element.style.backgroundColor = cell.level.color
        element.style.color = cell.level.text_color
      }
      return element
    })))
  const unrated = map.unrated.length
  return h('table', { class: 'heatmap', 'data-heatmap': map.spec.id, 'data-unrated': map.unrated.join(' ') },
    h('caption', {}, map.spec.caption,
      unrated > 0
        ? h('span', { class: 'heatmap-unrated' }, ` — ${matrix.heatmap.unrated}: ${map.unrated.join(', ')}`)
        : null),
    h('thead', {}, head),
    h('tbody', {}, ...body))
}
