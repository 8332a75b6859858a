/** Risk levels from the template's risk matrix: score = likelihood × severity. Never stored. */
import type { Level, RiskMatrix } from './template'

export interface Rating {
  likelihood: number
  severity: number
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

export function scaleScore(matrix: RiskMatrix, scale: 'likelihood' | 'severity', value: unknown): number | null {
  const point = matrix[scale].find((p) => p.value === value)
  return point ? point.score : null
}

export function levelForScore(matrix: RiskMatrix, score: number): Level | null {
  const exact = matrix.levels.find((level) => score >= level.min && score <= level.max)
  if (exact) return exact
  // a score between two bands (e.g. 5 on a larger scale) takes the lower band
  const below = matrix.levels.filter((level) => level.max < score)
  return below.length > 0 ? below[below.length - 1]! : null
}

export function rate(matrix: RiskMatrix, likelihood: unknown, severity: unknown): Rating | null {
  const l = scaleScore(matrix, 'likelihood', likelihood)
  const s = scaleScore(matrix, 'severity', severity)
  if (l === null || s === null) return null
  return { likelihood: l, severity: s, score: l * s, level: levelForScore(matrix, l * s) }
}

export function assessRisk(matrix: RiskMatrix, get: RowValues): RiskAssessment {
  const inherent = rate(matrix, get('likelihood'), get('severity'))
  const residual = rate(matrix, get('residual_likelihood'), get('residual_severity'))
  const overrideId = get('override_level')
  const override = typeof overrideId === 'string' ? matrix.levels.find((l) => l.id === overrideId) ?? null : null
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

/** The highest residual level of the register (falling back to the inherent level when no residual rating). */
export function highestResidual(matrix: RiskMatrix, rows: RowValues[]): Level | null {
  let best: Level | null = null
  for (const get of rows) {
    const assessment = assessRisk(matrix, get)
    const level = assessment.residual?.level ?? assessment.level
    if (level && (best === null || level.min > best.min)) best = level
  }
  return best
}
