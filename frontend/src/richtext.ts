/**
 * A rich-text field: a TipTap editor bound to one XmlFragment of the shared Y.Doc through
 * y-prosemirror (TipTap's Collaboration extension), with remote carets and a toolbar.
 * The schema is exactly the one of server/domain/templates/richtext-schema.json.
 */
import { Editor } from '@tiptap/core'
import StarterKit from '@tiptap/starter-kit'
import Collaboration from '@tiptap/extension-collaboration'
import CollaborationCaret from '@tiptap/extension-collaboration-caret'
import type * as Y from 'yjs'
import type { WebsocketProvider } from 'y-websocket'
import type { User } from './config'
import { h, uid } from './dom'
import { toolbar, type ToolbarButton } from './toolbar'

/** Pastes larger than this are refused: one change must stay well under the server's frame limit. */
export const MAX_PASTE_CHARS = 1_000_000

export interface RichTextOptions {
  fragment: Y.XmlFragment
  provider: WebsocketProvider
  user: User
  editable: boolean
  label: string
  labelId: string
  describedBy?: string
  onMessage: (message: string) => void
}

export interface RichTextField {
  element: HTMLElement
  editor: Editor
  destroy(): void
}

export function richTextField(options: RichTextOptions): RichTextField {
  const editorId = uid('rich-text')
  const mount = h('div', { class: 'rich-text-mount' })
  const editor = new Editor({
    element: mount,
    editable: options.editable,
    extensions: [
      StarterKit.configure({
        blockquote: false,
        code: false,
        codeBlock: false,
        horizontalRule: false,
        strike: false,
        underline: false,
        trailingNode: false,
        undoRedo: false, // Collaboration brings a Yjs-aware undo manager
        heading: { levels: [1, 2, 3] },
        link: {
          openOnClick: false,
          autolink: true,
          defaultProtocol: 'https',
          // mailto: is one of linkify's own schemes already; registering it again from every
          // field's editor made linkifyjs warn "already initialized" on each load.
        },
      }),
      Collaboration.configure({ fragment: options.fragment }),
      CollaborationCaret.configure({
        provider: options.provider,
        user: { name: options.user.name, color: options.user.color, org: options.user.org, id: options.user.id },
      }),
    ],
    editorProps: {
      attributes: {
        id: editorId,
        class: 'rich-text-input',
        role: 'textbox',
        'aria-multiline': 'true',
        'aria-labelledby': options.labelId,
        ...(options.describedBy ? { 'aria-describedby': options.describedBy } : {}),
        ...(options.editable ? {} : { 'aria-readonly': 'true' }),
      },
      handlePaste: (_view, event) => {
        const data = event.clipboardData
        const size = (data?.getData('text/html').length ?? 0) + (data?.getData('text/plain').length ?? 0)
        if (size > MAX_PASTE_CHARS) {
          options.onMessage('That paste is too large for one change. Paste it in smaller parts.')
          return true
        }
        return false
      },
    },
  })

  const parts: HTMLElement[] = []
  if (options.editable) parts.push(formattingToolbar(editor, options.label, editorId))
  parts.push(mount)
  const element = h('div', { class: 'rich-text' }, ...parts)
  return { element, editor, destroy: () => editor.destroy() }
}

function formattingToolbar(editor: Editor, label: string, editorId: string): HTMLElement {
  const buttons: ToolbarButton[] = [
    {
      name: 'bold', label: 'Bold', text: 'B', shortcut: 'Control+B',
      run: () => editor.chain().focus().toggleBold().run(),
      active: () => editor.isActive('bold'),
    },
    {
      name: 'italic', label: 'Italic', text: 'I', shortcut: 'Control+I',
      run: () => editor.chain().focus().toggleItalic().run(),
      active: () => editor.isActive('italic'),
    },
    {
      name: 'heading', label: 'Heading', text: 'H',
      run: () => editor.chain().focus().toggleHeading({ level: 2 }).run(),
      active: () => editor.isActive('heading'),
    },
    {
      name: 'bulletList', label: 'Bullet list', text: 'Bullet list',
      run: () => editor.chain().focus().toggleBulletList().run(),
      active: () => editor.isActive('bulletList'),
    },
    {
      name: 'orderedList', label: 'Numbered list', text: 'Numbered list',
      run: () => editor.chain().focus().toggleOrderedList().run(),
      active: () => editor.isActive('orderedList'),
    },
    {
      name: 'link', label: 'Link', text: 'Link',
      run: () => editLink(editor),
      active: () => editor.isActive('link'),
    },
  ]
  const bar = toolbar(`Formatting: ${label}`, editorId, buttons)
  const refresh = (): void => bar.refresh()
  editor.on('transaction', refresh)
  editor.on('focus', refresh)
  return bar.element
}

/** Ask for a link address; empty removes the link. Only http(s) and mailto are accepted. */
function editLink(editor: Editor): void {
  const current = (editor.getAttributes('link').href as string | undefined) ?? ''
  const answer = window.prompt('Link address (https://… or mailto:…). Leave empty to remove the link.', current)
  if (answer === null) {
    editor.commands.focus()
    return
  }
  let href = answer.trim()
  if (href === '') {
    editor.chain().focus().extendMarkRange('link').unsetLink().run()
    return
  }
  if (!/^[a-z][a-z0-9+.-]*:/i.test(href)) href = `https://${href}`
  if (!/^(https?:\/\/|mailto:)/i.test(href)) {
    window.alert('Only web (https://) and email (mailto:) links are allowed.')
    editor.commands.focus()
    return
  }
  if (editor.state.selection.empty && !editor.isActive('link')) {
    editor.chain().focus().insertContent({ type: 'text', text: href, marks: [{ type: 'link', attrs: { href } }] }).run()
    return
  }
  editor.chain().focus().extendMarkRange('link').setLink({ href }).run()
}
