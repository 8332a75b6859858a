/**
 * The comments of the section shown: read live from the `comments` map of the document
 * (which only the server writes), posted, replied to, resolved and reopened through the
 * comments API. Comment text is plain text and only ever set as textContent.
 *
 * The list is drawn again on every change of the map (anyone's reply arrives live), so what
 * a person is doing in it survives a redraw: each comment's reply form is one element kept
 * by comment id (its draft and open state with it), which resolved comments are shown is
 * kept by id, and focus returns to the element that had it.
 */
import * as Y from 'yjs'
import type { EditorContext } from './context'
import type { Section } from './template'
import { canComment } from './config'
import type { EditorConfig } from './config'
import { h, uid } from './dom'

const CHANNEL_TEXT: Record<string, string> = { browser: 'Browser', email: 'Email', api: 'API' }
const MAX_COMMENT = 10000
const WHOLE_DPIA = 'dpia' // where the email bridge puts a reply whose section has gone

export interface CommentsPanel {
  element: HTMLElement
  setSection(section: Section): void
}

interface Attachment {
  id: string
  name: string
  size: number
}

interface CommentData {
  id: string
  author: number | null
  section: string
  field: string
  signature: string
  attachments: Attachment[]
  authorName: string
  channel: string
  text: string
  created: string
  resolved: boolean
  resolvedBy: string
  replies: CommentData[]
}

const timeFormat = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeStyle: 'short' })

function read(id: string, map: Y.Map<unknown>): CommentData {
  const str = (key: string): string => {
    const value = map.get(key)
    return typeof value === 'string' ? value : ''
  }
  const replies = map.get('replies')
  const files = map.get('attachments')
  const author = map.get('author')
  return {
    id,
    author: typeof author === 'number' ? author : null,
    section: str('section'),
    field: str('field'),
    signature: str('signature'),
    attachments: files instanceof Y.Array
      ? files.toArray().filter((f): f is Y.Map<unknown> => f instanceof Y.Map).map((f) => ({
        id: String(f.get('id') ?? ''),
        name: String(f.get('name') ?? 'attachment'),
        size: Number(f.get('size') ?? 0),
      }))
      : [],
    authorName: str('author_name') || str('author') || 'Someone',
    channel: str('channel'),
    text: str('text'),
    created: str('created'),
    resolved: map.get('resolved') === true,
    resolvedBy: str('resolved_by'),
    replies: replies instanceof Y.Array
      ? replies.toArray().filter((r): r is Y.Map<unknown> => r instanceof Y.Map).map((r, i) => read(`${id}-${i}`, r))
      : [],
  }
}

export function commentsPanel(context: EditorContext): CommentsPanel {
  const comments = context.doc.getMap<unknown>('comments')
  let section: Section | null = null
  const heading = h('h2', { class: 'comments-title', id: 'comments-title' }, 'Comments')
  const list = h('ol', { class: 'comment-list', id: 'comment-list', 'aria-labelledby': 'comments-title' })
  const empty = h('p', { class: 'empty-note', id: 'comments-empty' }, 'No comments on this section yet.')

  const render = (): void => {
    if (!section) return
    const current = section
    const items: CommentData[] = []
    for (const [id, value] of comments.entries()) {
      // Replies whose section no longer exists belong to the whole DPIA: shown everywhere.
      const place = value instanceof Y.Map ? value.get('section') : null
      if (value instanceof Y.Map && (place === current.id || place === WHOLE_DPIA)) items.push(read(id, value))
    }
    items.sort((a, b) => (a.created < b.created ? -1 : a.created > b.created ? 1 : a.id < b.id ? -1 : 1))
    const files = context.config.commentsUrl !== null ? `/dpias/${encodeURIComponent(context.config.dpiaId)}/attachments/` : null
    const focused = document.activeElement instanceof HTMLElement && list.contains(document.activeElement)
      ? document.activeElement
      : null
    const focusKey = focused?.dataset.focusKey ?? null
    list.replaceChildren(...items.map((item) => commentItem(current, item, false, files, threads)))
    empty.hidden = items.length > 0
    if (focused) {
      // The same element when it is kept (a reply form), else its counterpart by key.
      const again = focused.isConnected
        ? focused
        : focusKey ? list.querySelector<HTMLElement>(`[data-focus-key="${CSS.escape(focusKey)}"]`) : null
      again?.focus()
    }
  }
  const threads = threadControls(context, render)
  comments.observeDeep(render)

  const form = canComment(context.config.role) && !context.config.locked
    ? commentForm(context, () => section)
    : null
  const element = h('aside', { class: 'comments', id: 'comments-panel', 'aria-labelledby': 'comments-title' },
    heading, list, empty, form?.element ?? null)
  return {
    element,
    setSection: (next) => {
      section = next
      heading.textContent = `Comments: ${next.short_title ?? next.title}`
      form?.setSection(next)
      render()
    },
  }
}

function attachmentList(item: CommentData, filesUrl: string | null): HTMLElement | null {
  if (item.attachments.length === 0) return null
  return h('ul', { class: 'comment-attachments', 'aria-label': 'Attachments' },
    ...item.attachments.map((file) => {
      const label = `${file.name} (${Math.max(1, Math.round(file.size / 1024))} KB)`
      return h('li', {}, filesUrl && /^[0-9]+$/.test(file.id)
        ? h('a', { href: filesUrl + file.id, download: file.name, rel: 'noopener' }, label)
        : label)
    }))
}

function commentItem(section: Section, item: CommentData, isReply: boolean, filesUrl: string | null, threads: ThreadControls | null = null): HTMLElement {
  const created = new Date(item.created)
  const time = Number.isNaN(created.getTime())
    ? null
    : h('time', { datetime: item.created, class: 'comment-time' }, timeFormat.format(created))
  const fieldLabel = item.section === WHOLE_DPIA
    ? 'the whole DPIA'
    : item.field ? section.fields.find((f) => f.id === item.field)?.label ?? item.field : ''
  const meta = h('div', { class: 'comment-meta' },
    h('span', { class: 'comment-author' }, item.authorName),
    ' ',
    h('span', { class: 'channel-badge', 'data-channel': item.channel }, CHANNEL_TEXT[item.channel] ?? (item.channel || 'Unknown')),
    ' ',
    time,
    item.resolved
      ? h('span', { class: 'comment-resolved' }, item.resolvedBy ? ` Resolved by ${item.resolvedBy}` : ' Resolved')
      : null)
  const className = `comment${isReply ? ' comment-reply' : ''}${item.resolved ? ' is-resolved' : ''}`
  if (!isReply && threads && item.resolved && !threads.isShown(item.id)) {
    // Collapsed: who wrote it, that it is resolved, and the way to see it again.
    return h('li', { class: `${className} is-collapsed`, 'data-comment-id': item.id },
      meta,
      h('p', { class: 'comment-text comment-summary' }, summary(item.text)),
      threads.actions(item))
  }
  return h('li', { class: className, 'data-comment-id': item.id },
    meta,
    fieldLabel ? h('p', { class: 'comment-field' }, `On: ${fieldLabel}`) : null,
    h('p', { class: 'comment-text' }, item.text),
    attachmentList(item, filesUrl),
    item.signature
      ? h('details', { class: 'comment-signature' }, h('summary', {}, 'Signature'), h('p', { class: 'comment-text' }, item.signature))
      : null,
    item.replies.length > 0
      ? h('ol', { class: 'comment-replies', 'aria-label': `Replies to ${item.authorName}` }, ...item.replies.map((r) => commentItem(section, r, true, filesUrl)))
      : null,
    !isReply && threads ? threads.actions(item) : null)
}

function summary(text: string): string {
  const line = text.split('\n')[0] ?? ''
  return line.length > 80 || text.includes('\n') ? `${line.slice(0, 80)}…` : line
}

interface ThreadControls {
  isShown(commentId: string): boolean
  actions(item: CommentData): HTMLElement
}

/** Who may resolve or reopen, as the server decides it (resolve_policy, decision 68); the
 * server decides again, this only spares people a button that would be refused. */
function mayResolve(config: EditorConfig, item: CommentData): boolean {
  if (config.role === 'owner' || config.role === 'editor' || config.role === 'dpo') return true
  return canComment(config.role) && item.author !== null && item.author === config.participantId
}

/** The reply form, the Resolve/Reopen button and the show/hide of a resolved comment. */
function threadControls(context: EditorContext, redraw: () => void): ThreadControls {
  const config = context.config
  const url = config.commentsUrl
  const writable = url !== null && canComment(config.role) && !config.locked
  const shown = new Set<string>()
  const forms = new Map<string, HTMLElement>()
  const base = (commentId: string): string => `${url ?? ''}/${encodeURIComponent(commentId)}`

  const send = async (path: string, body: unknown): Promise<string | null> => {
    const headers: Record<string, string> = { 'Content-Type': 'application/json', Accept: 'application/json' }
    if (config.csrfToken) headers['x-csrftoken'] = config.csrfToken
    try {
      const response = await fetch(path, { method: 'POST', credentials: 'same-origin', headers, body: JSON.stringify(body) })
      return response.ok ? null : await errorMessage(response, 'The change was not saved')
    } catch {
      return 'Could not reach the server. Check your connection and try again.'
    }
  }

  const replyForm = (item: CommentData): HTMLElement => {
    const kept = forms.get(item.id)
    if (kept) return kept
    const textId = uid('reply-text')
    const text = h('textarea', { id: textId, name: 'text', rows: 3, maxlength: MAX_COMMENT, class: 'comment-input', 'data-focus-key': `reply-text:${item.id}` })
    const error = h('p', { class: 'form-error', role: 'alert' })
    const submit = h('button', { type: 'submit', class: 'button', 'data-action': 'post-reply' }, 'Post reply')
    const cancel = h('button', { type: 'button', class: 'button button-secondary', 'data-action': 'cancel-reply' }, 'Cancel')
    const form = h('form', { class: 'comment-form reply-form', novalidate: true, hidden: true },
      h('label', { for: textId }, `Reply to ${item.authorName}`), text, error,
      h('div', { class: 'reply-buttons' }, submit, cancel))
    const close = (): void => {
      form.hidden = true
      error.textContent = ''
      const toggle = form.parentElement?.querySelector<HTMLButtonElement>('[data-action="reply"]')
      toggle?.setAttribute('aria-expanded', 'false')
      toggle?.focus()
    }
    cancel.addEventListener('click', close)
    form.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') { event.preventDefault(); close() }
    })
    form.addEventListener('submit', (event) => {
      event.preventDefault()
      const body = text.value.trim()
      if (body === '') {
        error.textContent = 'Write a reply before posting it.'
        text.focus()
        return
      }
      error.textContent = ''
      submit.disabled = true
      submit.textContent = 'Posting…'
      void send(`${base(item.id)}/replies`, { text: body }).then((failure) => {
        submit.disabled = false
        submit.textContent = 'Post reply'
        if (failure) {
          error.textContent = failure
          return
        }
        text.value = ''
        close()
        context.notify('Reply posted.')
      })
    })
    forms.set(item.id, form)
    return form
  }

  return {
    isShown: (commentId) => shown.has(commentId),
    actions: (item) => {
      const buttons: HTMLElement[] = []
      if (item.resolved) {
        const open = shown.has(item.id)
        buttons.push(h('button', {
          type: 'button', class: 'button button-secondary', 'data-action': 'show-resolved',
          'aria-expanded': open ? 'true' : 'false', 'data-focus-key': `show:${item.id}`,
        }, open ? 'Hide resolved comment' : 'Show resolved comment'))
        buttons[0]!.addEventListener('click', () => {
          if (shown.has(item.id)) shown.delete(item.id)
          else shown.add(item.id)
          redraw()
        })
      }
      let form: HTMLElement | null = null
      if (writable && (!item.resolved || shown.has(item.id))) {
        form = replyForm(item)
        const toggle = h('button', {
          type: 'button', class: 'button button-secondary', 'data-action': 'reply',
          'aria-expanded': form.hidden ? 'false' : 'true', 'data-focus-key': `reply:${item.id}`,
        }, 'Reply')
        const shownForm = form
        toggle.addEventListener('click', () => {
          shownForm.hidden = !shownForm.hidden
          toggle.setAttribute('aria-expanded', shownForm.hidden ? 'false' : 'true')
          if (!shownForm.hidden) shownForm.querySelector('textarea')?.focus()
        })
        buttons.push(toggle)
      }
      if (url !== null && !config.locked && mayResolve(config, item)) {
        const error = h('p', { class: 'form-error', role: 'alert' })
        const button = h('button', {
          type: 'button', class: 'button button-secondary', 'data-action': item.resolved ? 'reopen' : 'resolve',
          'data-focus-key': `resolve:${item.id}`,
        }, item.resolved ? 'Reopen' : 'Resolve')
        button.addEventListener('click', () => {
          button.disabled = true
          void send(`${base(item.id)}/resolve`, { resolved: !item.resolved }).then((failure) => {
            button.disabled = false
            if (failure) error.textContent = failure
            else context.notify(item.resolved ? 'Comment reopened.' : 'Comment resolved.')
          })
        })
        buttons.push(button, error)
      }
      return h('div', { class: 'comment-actions' },
        buttons.length > 0 ? h('div', { class: 'comment-buttons' }, ...buttons) : null,
        form)
    },
  }
}

function commentForm(context: EditorContext, currentSection: () => Section | null): { element: HTMLElement; setSection(section: Section): void } {
  const textId = uid('comment-text')
  const fieldId = uid('comment-field')
  const text = h('textarea', { id: textId, name: 'text', rows: 4, maxlength: MAX_COMMENT, required: true, class: 'comment-input' })
  const fieldSelect = h('select', { id: fieldId, name: 'field', class: 'comment-field-select' })
  const submit = h('button', { type: 'submit', class: 'button', 'data-action': 'post-comment' }, 'Post comment')
  const error = h('p', { class: 'form-error', id: 'comment-error', role: 'alert' })
  const configured = context.config.commentsUrl !== null
  const element = h('form', { class: 'comment-form', id: 'comment-form', novalidate: true },
    h('label', { for: textId }, 'Add a comment'),
    text,
    h('label', { for: fieldId }, 'About (optional)'),
    fieldSelect,
    error,
    submit,
    configured ? null : h('p', { class: 'guidance' }, 'Posting comments is not available on this page.'))
  if (!configured) submit.disabled = true

  element.addEventListener('submit', (event) => {
    event.preventDefault()
    void post()
  })

  const post = async (): Promise<void> => {
    const section = currentSection()
    const url = context.config.commentsUrl
    if (!section || url === null) return
    const body = text.value.trim()
    if (body === '') {
      error.textContent = 'Write a comment before posting it.'
      text.focus()
      return
    }
    error.textContent = ''
    submit.disabled = true
    submit.textContent = 'Posting…'
    try {
      const headers: Record<string, string> = { 'Content-Type': 'application/json', Accept: 'application/json' }
      if (context.config.csrfToken) headers['x-csrftoken'] = context.config.csrfToken
      const payload: { section: string; field?: string; text: string } = { section: section.id, text: body }
      if (fieldSelect.value) payload.field = fieldSelect.value
      const response = await fetch(url, {
        method: 'POST',
        credentials: 'same-origin',
        headers,
        body: JSON.stringify(payload),
      })
      if (!response.ok) {
        error.textContent = await errorMessage(response, 'The comment was not posted')
        return
      }
      text.value = ''
      context.notify('Comment posted.')
    } catch {
      error.textContent = 'Could not reach the server. Check your connection and try again.'
    } finally {
      submit.disabled = false
      submit.textContent = 'Post comment'
    }
  }

  return {
    element,
    setSection: (section) => {
      fieldSelect.replaceChildren(
        h('option', { value: '' }, 'The whole section'),
        ...section.fields.map((field) => h('option', { value: field.id }, field.label)))
      error.textContent = ''
    },
  }
}

async function errorMessage(response: Response, what: string): Promise<string> {
  try {
    const body = (await response.json()) as { error?: unknown }
    if (typeof body.error === 'string' && body.error) return body.error
  } catch {
    // not JSON: fall through to the status
  }
  return `${what} (HTTP ${response.status}). Try again.`
}
