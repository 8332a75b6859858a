/** A WAI-ARIA toolbar: one tab stop, arrow keys move between buttons, toggles use aria-pressed. */
import { h } from './dom'

export interface ToolbarButton {
  name: string
  label: string
  text: string
  shortcut?: string
  run: () => void
  active: () => boolean
}

export interface Toolbar {
  element: HTMLElement
  refresh(): void
}

export function toolbar(label: string, controls: string, buttons: ToolbarButton[]): Toolbar {
  const elements = buttons.map((button, index) => {
    const element = h('button', {
      type: 'button',
      class: 'toolbar-button',
      'data-command': button.name,
      // only where the visible text is an abbreviation (B, I, H): the name must contain the text
      'aria-label': button.text === button.label ? undefined : button.label,
      title: button.shortcut ? `${button.label} (${button.shortcut.replace('Control', 'Ctrl')})` : button.label,
      'aria-keyshortcuts': button.shortcut,
      'aria-pressed': 'false',
      tabindex: index === 0 ? '0' : '-1',
    }, button.text)
    // keep the editor's selection: act on mousedown's click without stealing focus first
    element.addEventListener('mousedown', (event) => event.preventDefault())
    element.addEventListener('click', () => button.run())
    return element
  })
  const element = h('div', {
    class: 'toolbar',
    role: 'toolbar',
    'aria-label': label,
    'aria-controls': controls,
  }, ...elements)
  element.addEventListener('keydown', (event) => {
    const index = elements.indexOf(document.activeElement as HTMLButtonElement)
    if (index < 0) return
    let next = index
    if (event.key === 'ArrowRight') next = (index + 1) % elements.length
    else if (event.key === 'ArrowLeft') next = (index - 1 + elements.length) % elements.length
    else if (event.key === 'Home') next = 0
    else if (event.key === 'End') next = elements.length - 1
    else return
    event.preventDefault()
    elements[index]!.tabIndex = -1
    elements[next]!.tabIndex = 0
    elements[next]!.focus()
  })
  const refresh = (): void => {
    buttons.forEach((button, index) => {
      elements[index]!.setAttribute('aria-pressed', String(button.active()))
    })
  }
  return { element, refresh }
}
