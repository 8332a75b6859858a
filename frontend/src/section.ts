/** One section of the DPIA: its guidance and fields, bound to the document while shown. */
import type { EditorContext } from './context'
import type { Field, Section } from './template'
import { fieldPath, fragmentName, riskRegisterPath, tableName } from './template'
import { h, slug, uid } from './dom'
import { control, type Control } from './controls'
import { richTextField } from './richtext'
import { tableField } from './tables'
import { assessRisk, highestLevel, highestResidual, overallResidualText, residualOrInherent } from './risk'
import type { Row } from './rows'

export interface SectionView {
  element: HTMLElement
  heading: HTMLElement
  destroy(): void
}

export function sectionView(context: EditorContext, section: Section): SectionView {
  const cleanups: (() => void)[] = []
  const valueControls = new Map<string, Control>()
  const headingId = `section-${section.id}`
  const heading = h('h2', { id: headingId, class: 'section-title', tabindex: '-1' }, section.title)
  const parts: (HTMLElement | null)[] = [heading]
  if (section.guidance) parts.push(h('p', { class: 'guidance section-guidance' }, section.guidance))
  if (section.computed?.length) parts.push(computedPanel(context, section, cleanups))
  if (section.signoff_kinds?.length) {
    parts.push(h('div', { class: 'signoff-kinds' },
      h('h3', {}, 'Approvals recorded for this DPIA'),
      h('ul', {}, ...section.signoff_kinds.map((kind) => h('li', { 'data-signoff-kind': kind.id },
        h('strong', {}, kind.label), kind.guidance ? h('span', { class: 'guidance' }, ` — ${kind.guidance}`) : null))),
      h('p', { class: 'guidance' }, 'Sign-offs are made by signed-in approvers and shown here once they exist.')))
  }

  for (const field of section.fields) {
    const path = fieldPath(section, field)
    parts.push(fieldElement(context, path, field, valueControls, cleanups))
  }

  const onValues = (event: { keysChanged: Set<string> }): void => {
    for (const key of event.keysChanged) valueControls.get(key)?.update()
  }
  context.values.observe(onValues)
  cleanups.push(() => context.values.unobserve(onValues))

  const element = h('section', { class: 'dpia-section', 'data-section': section.id, 'aria-labelledby': headingId }, ...parts)
  return {
    element,
    heading,
    destroy: () => { for (const cleanup of cleanups.splice(0)) cleanup() },
  }
}

function fieldElement(
  context: EditorContext,
  path: string,
  field: Field,
  valueControls: Map<string, Control>,
  cleanups: (() => void)[],
): HTMLElement {
  if (field.kind === 'table') {
    const table = tableField(context, path, field, uid('table-label'))
    cleanups.push(() => table.destroy())
    return table.element
  }
  if (field.kind === 'richtext') {
    const labelId = uid('label')
    const guidanceId = field.guidance ? uid('guidance') : undefined
    const rich = richTextField({
      fragment: context.doc.getXmlFragment(fragmentName(path)),
      provider: context.provider,
      user: context.config.user,
      editable: context.editable,
      label: field.label,
      labelId,
      describedBy: guidanceId,
      onMessage: context.notify,
    })
    cleanups.push(() => rich.destroy())
    // clicking the label focuses the editor, as a <label for> would for an input
    const label = h('div', { class: 'field-label', id: labelId }, field.label)
    label.addEventListener('click', () => rich.editor.commands.focus())
    return h('div', { class: 'field', 'data-field': path, 'data-kind': 'richtext', id: `field-${slug(path)}` },
      label,
      field.guidance ? h('p', { class: 'guidance', id: guidanceId }, field.guidance) : null,
      rich.element)
  }
  const c = control(
    { kind: field.kind, label: field.label, guidance: field.guidance, options: field.options },
    {
      get: () => context.values.get(path),
      set: (value) => (value === undefined ? context.values.delete(path) : context.values.set(path, value)),
    },
    context.editable,
  )
  valueControls.set(path, c)
  return h('div', { class: 'field', 'data-field': path, 'data-kind': field.kind, id: `field-${slug(path)}` }, c.element)
}

/** Values worked out from the risk register (the outcome section); never stored. */
function computedPanel(context: EditorContext, section: Section, cleanups: (() => void)[]): HTMLElement {
  const registerPath = riskRegisterPath(context.template)
  const rows = registerPath ? context.doc.getArray<Row>(tableName(registerPath)) : null
  const items = (section.computed ?? []).map((item) => {
    const value = h('dd', { 'data-computed': item.id })
    return { item, value, element: [h('dt', {}, item.label), value] }
  })
  const update = (): void => {
    const matrix = context.template.risk_matrix
    const all = rows ? rows.toArray().map((row) => (key: string) => row.get(key)) : []
    for (const { item, value } of items) {
      if (item.compute === 'max_residual_level') {
        const level = highestResidual(matrix, all)
        value.textContent = overallResidualText(matrix, all)
        value.dataset.level = level?.id ?? 'none'
      } else if (item.compute === 'residual_high_accepted') {
        const high = highestLevel(matrix)
        const accepted = all.some((get) => residualOrInherent(assessRisk(matrix, get))?.id === high.id
          && (get('effect') === 'accepted' || get('status') === 'accepted'))
        value.textContent = accepted ? 'Yes — consult the ICO before the processing starts' : 'No'
        value.dataset.value = String(accepted)
      }
    }
  }
  if (rows) {
    rows.observeDeep(update)
    cleanups.push(() => rows.unobserveDeep(update))
  }
  update()
  return h('dl', { class: 'computed' }, ...items.flatMap((i) => i.element))
}
