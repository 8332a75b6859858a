/** The template format of docs/document-model.md, and where each field lives in the Y.Doc. */

export type FieldKind =
  | 'richtext' | 'text' | 'choice' | 'multichoice' | 'yesno' | 'date' | 'number' | 'table'
export type ColumnKind = Exclude<FieldKind, 'richtext' | 'table'> | 'longtext'

export interface Option { value: string; label: string }

export interface Column {
  id: string
  label: string
  kind: ColumnKind
  guidance?: string
  options?: Option[]
  /** Options are the rows of another table, `<section>.<field>`; values are row ids. */
  options_from?: string
  /** `likelihood` or `severity`: the column scores a risk on that risk-matrix scale. */
  scale?: Scale
}

export interface Field {
  id: string
  label: string
  kind: FieldKind
  guidance?: string
  options?: Option[]
  row_prefix?: string
  /** What one row is ("risk"), for "Add a risk"; without it, "Add a row". */
  row_noun?: string
  columns?: Column[]
  heatmap?: boolean
}

export interface Computed { id: string; label: string; compute: string }
export interface SignoffKind { id: string; label: string; guidance?: string }

export interface Section {
  id: string
  title: string
  short_title?: string
  guidance?: string
  fields: Field[]
  computed?: Computed[]
  signoff_kinds?: SignoffKind[]
}

export interface ScalePoint { value: string; score: number; label: string; description?: string }
export interface Level {
  id: string
  label: string
  min: number
  max: number
  color: string
  text_color: string
}
export type Scale = 'likelihood' | 'severity'
export interface HeatmapAxis { scale: Scale; order: 'ascending' | 'descending' }
/** One map: its id (`inherent`, `residual`), caption, and the register columns it plots. */
export interface HeatmapSpec { id: string; caption: string; likelihood: string; severity: string }
/** How the heat maps are drawn: the same definition drives the exports (server/domain/risk.py). */
export interface HeatmapDefinition {
  rows: HeatmapAxis
  columns: HeatmapAxis
  corner: string
  unrated: string
  maps: HeatmapSpec[]
}
export interface RiskMatrix {
  likelihood: ScalePoint[]
  severity: ScalePoint[]
  levels: Level[]
  heatmap: HeatmapDefinition
}

export interface Template {
  id: string
  version: number
  title: string
  sections: Section[]
  risk_matrix: RiskMatrix
}

/** `<section>.<field>`: the key in `values`, and the suffix of fragment and table names. */
export const fieldPath = (section: Section, field: Field): string => `${section.id}.${field.id}`
export const fragmentName = (path: string): string => `field:${path}`
export const tableName = (path: string): string => `table:${path}`

export function findField(template: Template, path: string): Field | undefined {
  const [sectionId, fieldId] = path.split('.')
  return template.sections.find((s) => s.id === sectionId)?.fields.find((f) => f.id === fieldId)
}

/** The risk register: the first table with `heatmap: true`. */
export function riskRegisterPath(template: Template): string | undefined {
  for (const section of template.sections) {
    for (const field of section.fields) {
      if (field.kind === 'table' && field.heatmap) return fieldPath(section, field)
    }
  }
  return undefined
}
