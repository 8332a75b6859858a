/** A section's status from its content: empty, or in progress once any field is filled. */
import * as Y from 'yjs'
import type { Section } from './template'
import { fieldPath, fragmentName, tableName } from './template'

export type SectionStatus = 'empty' | 'in-progress'
/** What the section list shows: a status, or 'loading' before the document first synced. */
export type SectionState = SectionStatus | 'loading'

export function sectionStatus(doc: Y.Doc, section: Section): SectionStatus {
  const values = doc.getMap<unknown>('values')
  for (const field of section.fields) {
    const path = fieldPath(section, field)
    if (field.kind === 'richtext') {
      if (hasText(doc.getXmlFragment(fragmentName(path)))) return 'in-progress'
    } else if (field.kind === 'table') {
      if (doc.getArray(tableName(path)).length > 0) return 'in-progress'
    } else if (isFilled(values.get(path))) {
      return 'in-progress'
    }
  }
  return 'empty'
}

function isFilled(value: unknown): boolean {
  if (value === undefined || value === null) return false
  if (typeof value === 'string') return value.trim() !== ''
  if (Array.isArray(value)) return value.length > 0
  return true
}

function hasText(node: Y.XmlFragment | Y.XmlElement): boolean {
  for (const child of node.toArray()) {
    if (child instanceof Y.XmlText) {
      if (child.toString().replace(/<[^>]*>/g, '').trim() !== '') return true
    } else if (child instanceof Y.XmlElement) {
      if (hasText(child)) return true
    }
  }
  return false
}
