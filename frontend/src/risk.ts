/**
 * The risk matrix: how a risk is rated and where it sits on the heat maps. Never stored.
 *
 * The same rules as server/domain/risk.py, read from the same template JSON (`risk_matrix`):
 * the exports and the past-version pages draw the server's grid, the editor draws this one,
 * and tests/browser/test_heatmap_agreement.py checks that they agree cell by cell.
 * - A rating is a likelihood and a severity that are both points of their scale, matched by
 *   the stored value (`"2"`; the number 2 is the same value). Otherwise the risk is unrated:
 *   never placed in a cell, listed as "not yet rated".
 * - The level of a score is the band containing it; between two bands, the lower one.
 * - A cell's level is its own score's; an override changes a risk's level, not the map.
 * - An override applies only with a reason.
 * - For the outcome's computed values, a risk whose residual is not rated yet counts at its
 *   level before measures (the maps do not do this).
 */
import type { HeatmapSpec, Level, RiskMatrix, Scale, ScalePoint } from './template'

export interface Rating {
  likelihood: ScalePoint
  severity: ScalePoint
  score: number
  level: Level | null
}

export interface RiskAssessment {
  inherent: Rating | null
  /** The level shown: the override when it has a reason, else the computed one. */
  level: Level | null
  overridden: boolean
  /** An override was chosen but no reason given: it is not applied. */
  overrideWithoutReason: boolean
  residual: Rating | null
}

export type RowValues = (key: string) => unknown

export const INHERENT = 'inherent'
export const RESIDUAL = 'residual'

/** A stored scale value as the template spells it: `"2"`; the number 2 is the same. */
function valueKey(value: unknown): string | null {
  if (typeof value === 'string') return value
  if (typeof value === 'number' && Number.isInteger(value)) return String(value)
  return null
}

export function scalePoint(matrix: RiskMatrix, scale: Scale, value: unknown): ScalePoint | null {
  const key = valueKey(value)
  return matrix[scale].find((p) => p.value === key) ?? null
}

export function levelForScore(matrix: RiskMatrix, score: number): Level | null {
  const exact = matrix.levels.find((level) => score >= level.min && score <= level.max)
  if (exact) return exact
  const below = matrix.levels.filter((level) => level.max < score)
  return below.length > 0 ? below.reduce((a, b) => (b.max > a.max ? b : a)) : null
}

export function rate(matrix: RiskMatrix, likelihood: unknown, severity: unknown): Rating | null {
  const l = scalePoint(matrix, 'likelihood', likelihood)
  const s = scalePoint(matrix, 'severity', severity)
  if (l === null || s === null) return null
  const score = l.score * s.score
  return { likelihood: l, severity: s, score, level: levelForScore(matrix, score) }
}

export function mapSpec(matrix: RiskMatrix, id: string): HeatmapSpec {
  const spec = matrix.heatmap.maps.find((m) => m.id === id)
  if (!spec) throw new Error(`the template's risk matrix has no ${id} heat map`)
  return spec
}

export function assessRisk(matrix: RiskMatrix, get: RowValues): RiskAssessment {
  const before = mapSpec(matrix, INHERENT)
  const after = mapSpec(matrix, RESIDUAL)
  const inherent = rate(matrix, get(before.likelihood), get(before.severity))
  const residual = rate(matrix, get(after.likelihood), get(after.severity))
  const overrideId = get('override_level')
  const override = matrix.levels.find((l) => l.id === overrideId) ?? null
  const reason = get('override_reason')
  const hasReason = typeof reason === 'string' && reason.trim() !== ''
  const overridden = override !== null && hasReason
  return {
    inherent,
    level: overridden ? override : inherent?.level ?? null,
    overridden,
    overrideWithoutReason: override !== null && !hasReason,
    residual,
  }
}

/** The level the outcome counts: the residual rating's, else the level before measures. */
export function residualOrInherent(assessment: RiskAssessment): Level | null {
  return assessment.residual !== null ? assessment.residual.level : assessment.level
}

/** The highest residual level of the register (the outcome's overall residual risk). */
export function highestResidual(matrix: RiskMatrix, rows: RowValues[]): Level | null {
  let best: Level | null = null
  for (const get of rows) {
    const level = residualOrInherent(assessRisk(matrix, get))
    if (level && (best === null || level.min > best.min)) best = level
  }
  return best
}

/** The overall residual risk as the editor and the record print it (risk.py's
 * `overall_residual_text`): the risks counted at their level before measures are named. */
export function overallResidualText(matrix: RiskMatrix, rows: RowValues[]): string {
  const level = highestResidual(matrix, rows)
  if (level === null) return 'No rated risks yet'
  const counted = rows.filter((get) => {
    const assessment = assessRisk(matrix, get)
    return assessment.residual === null && assessment.level !== null
  }).map(riskRef)
  if (counted.length === 0) return level.label
  return `${level.label} (counting ${counted.join(', ')} at the level before measures, not yet rated after them)`
}

export function highestLevel(matrix: RiskMatrix): Level {
  return matrix.levels.reduce((a, b) => (b.min > a.min ? b : a))
}

// -- the heat maps ---------------------------------------------------------------------------

export interface HeatCell {
  likelihood: ScalePoint
  severity: ScalePoint
  level: Level | null
  refs: string[]
}

export interface HeatGrid {
  spec: HeatmapSpec
  rows: ScalePoint[]
  columns: ScalePoint[]
  /** `grid[row][column]`, in display order. */
  grid: HeatCell[][]
  unrated: string[]
}

export function riskRef(get: RowValues): string {
  const ref = get('ref')
  return ref === undefined || ref === null || ref === '' ? '?' : String(ref)
}

function axis(matrix: RiskMatrix, scale: Scale, order: 'ascending' | 'descending'): ScalePoint[] {
  const sign = order === 'descending' ? -1 : 1
  return [...matrix[scale]].sort((a, b) => sign * (a.score - b.score))
}

export function heatGrid(matrix: RiskMatrix, spec: HeatmapSpec, rows: RowValues[]): HeatGrid {
  const placed = new Map<string, string[]>()
  const unrated: string[] = []
  for (const get of rows) {
    const rating = rate(matrix, get(spec.likelihood), get(spec.severity))
    if (rating === null) {
      unrated.push(riskRef(get))
      continue
    }
    const key = `${rating.likelihood.value}\u0000${rating.severity.value}`
    placed.set(key, [...(placed.get(key) ?? []), riskRef(get)])
  }
  const { rows: rowAxis, columns: columnAxis } = matrix.heatmap
  const rowPoints = axis(matrix, rowAxis.scale, rowAxis.order)
  const columnPoints = axis(matrix, columnAxis.scale, columnAxis.order)
  const grid = rowPoints.map((r) => columnPoints.map((c): HeatCell => {
    const likelihood = rowAxis.scale === 'likelihood' ? r : c
    const severity = rowAxis.scale === 'severity' ? r : c
    return {
      likelihood,
      severity,
      level: levelForScore(matrix, likelihood.score * severity.score),
      refs: placed.get(`${likelihood.value}\u0000${severity.value}`) ?? [],
    }
  }))
  return { spec, rows: rowPoints, columns: columnPoints, grid, unrated }
}
