/**
 * Entry point: mounts the DPIA editor on `#dpia-editor`, configured by its `data-config`
 * attribute (see frontend/README.md). Exposes `window.opendpia` for tests and debugging.
 */
import './editor.css'
import { readConfig, ConfigError } from './config'
import { mountEditor, type EditorApp } from './app'

declare global {
  interface Window { opendpia?: EditorApp }
}

function start(): void {
  const root = document.getElementById('dpia-editor')
  if (!root) return
  try {
    const app = mountEditor(root, readConfig(root))
    window.opendpia = app
  } catch (error) {
    const message = error instanceof ConfigError
      ? `The editor could not start: ${error.message}.`
      : 'The editor could not start. Reload the page; if this keeps happening, tell your administrator.'
    const p = document.createElement('p')
    p.className = 'editor-fatal'
    p.setAttribute('role', 'alert')
    p.textContent = message
    root.replaceChildren(p)
    throw error
  }
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start, { once: true })
else start()
