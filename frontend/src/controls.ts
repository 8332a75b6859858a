/**
 * Form controls for structured values (text, longtext, number, date, choice, yesno,
 * multichoice), each bound to one key of a Y.Map: the `values` map for fields, a row's map
 * for table cells. Local input writes the value at once; remote changes call `update()`.
 * An empty control deletes the key, so "empty" means absent in the document.
 */
import type { ColumnKind, Option } from './template'
import { h, uid } from './dom'

export interface Binding {
  get(): unknown
  /** `undefined` deletes the key. */
  set(value: unknown): void
}

export interface ControlSpec {
  kind: Exclude<ColumnKind, never>
  label: string
  guidance?: string
  /** Static options, or a function for options that change (rows of another table). */
  options?: Option[] | (() => Option[])
}

export interface Control {
  element: HTMLElement
  update(): void
}

const MAX_TEXT = 1000
const MAX_LONGTEXT = 20000

export function control(spec: ControlSpec, binding: Binding, editable: boolean): Control {
  switch (spec.kind) {
    case 'yesno':
      return radioGroup(spec, binding, editable, [
        { value: 'true', label: 'Yes' },
        { value: 'false', label: 'No' },
      ], (value) => (value === true ? 'true' : value === false ? 'false' : ''), (raw) => raw === 'true')
    case 'multichoice':
      return checkboxGroup(spec, binding, editable)
    default:
      return single(spec, binding, editable)
  }
}

function optionsOf(spec: ControlSpec): Option[] {
  const options = spec.options ?? []
  return typeof options === 'function' ? options() : options
}

function guidanceElement(spec: ControlSpec): { element: HTMLElement | null; id: string | undefined } {
  if (!spec.guidance) return { element: null, id: undefined }
  const id = uid('guidance')
  return { element: h('p', { class: 'guidance', id }, spec.guidance), id }
}

/** Set an input's value from a remote change, keeping the caret where it was if focused. */
function setInputValue(input: HTMLInputElement | HTMLTextAreaElement, value: string): void {
  if (input.value === value) return
  if (document.activeElement === input && input.type !== 'date' && input.type !== 'number') {
    const start = input.selectionStart
    const end = input.selectionEnd
    input.value = value
    if (start !== null && end !== null) input.setSelectionRange(Math.min(start, value.length), Math.min(end, value.length))
  } else {
    input.value = value
  }
}

function single(spec: ControlSpec, binding: Binding, editable: boolean): Control {
  const id = uid('input')
  const guidance = guidanceElement(spec)
  const common = { id, 'aria-describedby': guidance.id, disabled: !editable }
  let input: HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement
  let read: () => unknown
  let show: () => void
  switch (spec.kind) {
    case 'longtext': {
      const area = h('textarea', { ...common, rows: 3, maxlength: MAX_LONGTEXT })
      input = area
      read = () => area.value === '' ? undefined : area.value
      show = () => setInputValue(area, stringOf(binding.get()))
      break
    }
    case 'number': {
      const field = h('input', { ...common, type: 'number', inputmode: 'decimal', step: 'any' })
      input = field
      read = () => (field.value === '' || Number.isNaN(field.valueAsNumber) ? undefined : field.valueAsNumber)
      show = () => {
        const value = binding.get()
        setInputValue(field, typeof value === 'number' ? String(value) : '')
      }
      break
    }
    case 'date': {
      const field = h('input', { ...common, type: 'date' })
      input = field
      read = () => (/^\d{4}-\d{2}-\d{2}$/.test(field.value) ? field.value : undefined)
      show = () => setInputValue(field, stringOf(binding.get()))
      break
    }
    case 'choice': {
      const select = h('select', common)
      input = select
      const fill = (): void => {
        const options = optionsOf(spec)
        select.replaceChildren(
          h('option', { value: '' }, 'Not answered'),
          ...options.map((option) => h('option', { value: option.value }, option.label)),
        )
      }
      fill()
      read = () => (select.value === '' ? undefined : select.value)
      show = () => {
        const value = stringOf(binding.get())
        if (value !== '' && !optionsOf(spec).some((o) => o.value === value)) {
          // a value this template version does not know: show it rather than lose it
          select.appendChild(h('option', { value }, `${value} (unknown option)`))
        }
        select.value = value
      }
      break
    }
    default: {
      const field = h('input', { ...common, type: 'text', maxlength: MAX_TEXT, autocomplete: 'off' })
      input = field
      read = () => (field.value === '' ? undefined : field.value)
      show = () => setInputValue(field, stringOf(binding.get()))
    }
  }
  const onInput = (): void => binding.set(read())
  input.addEventListener(input instanceof HTMLSelectElement || spec.kind === 'date' ? 'change' : 'input', onInput)
  const element = h('div', { class: 'control', 'data-kind': spec.kind },
    h('label', { for: id, class: 'control-label' }, spec.label),
    guidance.element,
    input,
  )
  show()
  return { element, update: show }
}

function radioGroup(
  spec: ControlSpec,
  binding: Binding,
  editable: boolean,
  options: Option[],
  toRaw: (value: unknown) => string,
  fromRaw: (raw: string) => unknown,
): Control {
  const name = uid('radio')
  const guidance = guidanceElement(spec)
  const inputs = options.map((option) => {
    const input = h('input', { type: 'radio', name, value: option.value, disabled: !editable })
    input.addEventListener('change', () => { if (input.checked) binding.set(fromRaw(option.value)) })
    return { input, element: h('label', { class: 'choice' }, input, ' ', option.label) }
  })
  const clear = editable
    ? h('button', { type: 'button', class: 'link-button clear-answer', 'aria-label': `Clear answer: ${spec.label}` }, 'Clear')
    : null
  clear?.addEventListener('click', () => binding.set(undefined))
  const element = h('fieldset', { class: 'control', 'data-kind': spec.kind, 'aria-describedby': guidance.id },
    h('legend', { class: 'control-label' }, spec.label),
    guidance.element,
    h('div', { class: 'choices choices-inline' }, ...inputs.map((i) => i.element), clear),
  )
  const update = (): void => {
    const raw = toRaw(binding.get())
    for (const { input } of inputs) input.checked = input.value === raw
  }
  update()
  return { element, update }
}

function checkboxGroup(spec: ControlSpec, binding: Binding, editable: boolean): Control {
  const guidance = guidanceElement(spec)
  const list = h('div', { class: 'choices' })
  const element = h('fieldset', { class: 'control', 'data-kind': spec.kind, 'aria-describedby': guidance.id },
    h('legend', { class: 'control-label' }, spec.label),
    guidance.element,
    list,
  )
  const selected = (): string[] => {
    const value = binding.get()
    return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : []
  }
  let rendered = ''
  const update = (): void => {
    const options = optionsOf(spec)
    const current = selected()
    // unknown values (an option since removed, a deleted row) stay in the list, marked
    const all = [...options, ...current.filter((v) => !options.some((o) => o.value === v))
      .map((v) => ({ value: v, label: `${v} (no longer available)` }))]
    const key = JSON.stringify(all)
    if (key !== rendered) {
      rendered = key
      const focusedValue = list.contains(document.activeElement) ? (document.activeElement as HTMLInputElement).value : null
      list.replaceChildren(...(all.length === 0
        ? [h('p', { class: 'empty-note' }, 'Nothing to choose from yet.')]
        : all.map((option) => {
          const input = h('input', { type: 'checkbox', value: option.value, disabled: !editable })
          input.addEventListener('change', () => {
            const values = new Set(selected())
            if (input.checked) values.add(option.value)
            else values.delete(option.value)
            // keep the template's order, so concurrent edits converge on tidy arrays
            const ordered = all.map((o) => o.value).filter((v) => values.has(v))
            binding.set(ordered.length === 0 ? undefined : ordered)
          })
          return h('label', { class: 'choice' }, input, ' ', option.label)
        })))
      if (focusedValue !== null) {
        list.querySelector<HTMLInputElement>(`input[value="${CSS.escape(focusedValue)}"]`)?.focus()
      }
    }
    for (const input of list.querySelectorAll<HTMLInputElement>('input[type=checkbox]')) {
      input.checked = current.includes(input.value)
    }
  }
  update()
  return { element, update }
}

function stringOf(value: unknown): string {
  return typeof value === 'string' ? value : value === undefined || value === null ? '' : String(value)
}
