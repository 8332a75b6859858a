/** Likelihood × severity heat maps of the risk register, before and after measures. */
import type { RiskMatrix } from './template'
import { h } from './dom'
import { levelForScore, rate } from './risk'

export interface RiskPoint {
  ref: string
  likelihood: unknown
  severity: unknown
  residualLikelihood: unknown
  residualSeverity: unknown
}

export interface Heatmaps {
  element: HTMLElement
  update(points: RiskPoint[]): void
}

export function heatmaps(matrix: RiskMatrix): Heatmaps {
  const before = h('div', { class: 'heatmap-slot' })
  const after = h('div', { class: 'heatmap-slot' })
  const element = h('div', { class: 'heatmaps', id: 'risk-heatmaps' }, before, after)
  const update = (points: RiskPoint[]): void => {
    before.replaceChildren(table(matrix, 'Before measures', 'before',
      points.map((p) => ({ ref: p.ref, l: p.likelihood, s: p.severity }))))
    after.replaceChildren(table(matrix, 'After measures (residual)', 'after',
      points.map((p) => ({ ref: p.ref, l: p.residualLikelihood, s: p.residualSeverity }))))
  }
  update([])
  return { element, update }
}

function table(matrix: RiskMatrix, caption: string, which: string, points: { ref: string; l: unknown; s: unknown }[]): HTMLElement {
  const cells = new Map<string, string[]>()
  let unrated = 0
  for (const point of points) {
    const rating = rate(matrix, point.l, point.s)
    if (!rating) {
      unrated += 1
      continue
    }
    const key = `${rating.likelihood}x${rating.severity}`
    cells.set(key, [...(cells.get(key) ?? []), point.ref])
  }
  const severities = [...matrix.severity].sort((a, b) => b.score - a.score)
  const likelihoods = [...matrix.likelihood].sort((a, b) => a.score - b.score)
  const head = h('tr', {},
    h('th', { scope: 'col', class: 'corner' }, h('span', { class: 'axis-note' }, 'Severity ↓ / Likelihood →')),
    ...likelihoods.map((l) => h('th', { scope: 'col' }, l.label)))
  const body = severities.map((s) => h('tr', {},
    h('th', { scope: 'row' }, s.label),
    ...likelihoods.map((l) => {
      const refs = cells.get(`${l.score}x${s.score}`) ?? []
      const level = levelForScore(matrix, l.score * s.score)
      const count = refs.length
      const description = `Severity ${s.label}, likelihood ${l.label}, ${level ? `${level.label} risk` : 'unrated'}: `
        + (count === 0 ? 'no risks' : `${count} ${count === 1 ? 'risk' : 'risks'} (${refs.join(', ')})`)
      const cell = h('td', {
        class: `heatmap-cell${count === 0 ? ' is-empty' : ''}`,
        'data-likelihood': l.value,
        'data-severity': s.value,
        'data-count': count,
        'data-level': level?.id,
        title: description,
      },
      h('span', { class: 'visually-hidden' }, description),
      h('span', { class: 'heatmap-count', 'aria-hidden': 'true' }, count === 0 ? '' : String(count)),
      count > 0 ? h('span', { class: 'heatmap-refs', 'aria-hidden': 'true' }, refs.join(' ')) : null)
      if (level) {
        cell.style.backgroundColor = level.color
        cell.style.color = level.text_color
      }
      return cell
    })))
  return h('table', { class: 'heatmap', 'data-heatmap': which },
    h('caption', {}, caption, unrated > 0 ? h('span', { class: 'heatmap-unrated' }, ` (${unrated} not yet rated)`) : null),
    h('thead', {}, head),
    h('tbody', {}, ...body))
}
