/** Table rows in the Y.Doc: `Array` of `Map`s with a random `id` and a `ref` such as `R3`. */
import * as Y from 'yjs'
import type { Field, Option } from './template'

export type Row = Y.Map<unknown>

/** A random id; `crypto.getRandomValues` works on plain-HTTP pages too, unlike randomUUID. */
export function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12))
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
}

export function nextRef(rows: Y.Array<Row>, prefix: string): string {
  let largest = 0
  for (const row of rows) {
    const ref = row.get('ref')
    if (typeof ref === 'string' && ref.startsWith(prefix)) {
      const n = Number.parseInt(ref.slice(prefix.length), 10)
      if (Number.isFinite(n) && n > largest) largest = n
    }
  }
  return `${prefix}${largest + 1}`
}

export function addRow(doc: Y.Doc, rows: Y.Array<Row>, prefix: string): string {
  const id = randomId()
  doc.transact(() => {
    const row = new Y.Map<unknown>()
    row.set('id', id)
    row.set('ref', nextRef(rows, prefix))
    rows.push([row])
  })
  return id
}

export function deleteRow(rows: Y.Array<Row>, id: string): boolean {
  const index = rows.toArray().findIndex((row) => row.get('id') === id)
  if (index < 0) return false
  rows.delete(index, 1)
  return true
}

/** The text that names a row: its first filled text column. */
export function rowTitle(field: Field, row: Row): string {
  for (const column of field.columns ?? []) {
    if (column.kind !== 'text' && column.kind !== 'longtext') continue
    const value = row.get(column.id)
    if (typeof value === 'string' && value.trim() !== '') {
      const line = value.trim().split('\n')[0]!
      return line.length > 80 ? `${line.slice(0, 79)}…` : line
    }
  }
  return ''
}

/** A table's rows as options (value: row id; label: ref and title), for `options_from`. */
export function rowOptions(field: Field, rows: Y.Array<Row>): Option[] {
  return rows.toArray().flatMap((row) => {
    const id = row.get('id')
    if (typeof id !== 'string') return []
    const ref = String(row.get('ref') ?? '')
    const title = rowTitle(field, row)
    return [{ value: id, label: title ? `${ref} ${title}` : ref }]
  })
}
