/** What every part of the editor shares: the document, the provider, who is editing. */
import type * as Y from 'yjs'
import type { WebsocketProvider } from 'y-websocket'
import type { EditorConfig } from './config'
import type { Template } from './template'

export interface EditorContext {
  config: EditorConfig
  template: Template
  doc: Y.Doc
  provider: WebsocketProvider
  values: Y.Map<unknown>
  editable: boolean
  /** Show a short message to the user (announced assertively). */
  notify(message: string): void
}
