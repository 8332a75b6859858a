/** Small DOM builders. Strings always become text nodes, never markup. */

export type Child = Node | string | number | null | undefined | false
export type Attrs = Record<string, string | number | boolean | null | undefined>

/** Create an element: attributes (false/null/undefined skipped, true → ""), then children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag)
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue
    element.setAttribute(name, value === true ? '' : String(value))
  }
  append(element, ...children)
  return element
}

export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue
    parent.appendChild(typeof child === 'string' || typeof child === 'number'
      ? document.createTextNode(String(child))
      : child)
  }
}

/** Replace all children of `parent`. */
export function replaceChildren(parent: Element, ...children: Child[]): void {
  parent.replaceChildren()
  append(parent, ...children)
}

let nextId = 0
/** A document-unique id for label/aria wiring. */
export function uid(prefix: string): string {
  nextId += 1
  return `${prefix}-${nextId}`
}

/** Make a CSS/id-safe token out of a field path such as `risks.register`. */
export function slug(path: string): string {
  return path.replace(/[^A-Za-z0-9_-]/g, '-')
}
