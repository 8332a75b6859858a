/**
 * The comments of the section shown: read live from the `comments` map of the document
 * (which only the server writes), posted through the comments API. Comment text is plain
 * text and only ever set as textContent.
 */
import * as Y from 'yjs'
import type { EditorContext } from './context'
import type { Section } from './template'
import { canComment } from './config'
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
  section: string
  field: string
  signature: string
  attachments: Attachment[]
  authorName: string
  channel: string
  text: string
  created: string
  resolved: boolean
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
  return {
    id,
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
    list.replaceChildren(...items.map((item) => commentItem(current, item, false, files)))
    empty.hidden = items.length > 0
  }
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

function commentItem(section: Section, item: CommentData, isReply: boolean, filesUrl: string | null): HTMLElement {
  const created = new Date(item.created)
  const time = Number.isNaN(created.getTime())
    ? null
    : h('time', { datetime: item.created, class: 'comment-time' }, timeFormat.format(created))
  const fieldLabel = item.section === WHOLE_DPIA
    ? 'the whole DPIA'
    : item.field ? section.fields.find((f) => f.id === item.field)?.label ?? item.field : ''
  return h('li', { class: `comment${isReply ? ' comment-reply' : ''}${item.resolved ? ' is-resolved' : ''}`, 'data-comment-id': item.id },
    h('div', { class: 'comment-meta' },
      h('span', { class: 'comment-author' }, item.authorName),
      ' ',
      h('span', { class: 'channel-badge', 'data-channel': item.channel }, CHANNEL_TEXT[item.channel] ?? (item.channel || 'Unknown')),
      ' ',
      time,
      item.resolved ? h('span', { class: 'comment-resolved' }, ' Resolved') : null),
    fieldLabel ? h('p', { class: 'comment-field' }, `On: ${fieldLabel}`) : null,
    h('p', { class: 'comment-text' }, item.text),
    attachmentList(item, filesUrl),
    item.signature
      ? h('details', { class: 'comment-signature' }, h('summary', {}, 'Signature'), h('p', { class: 'comment-text' }, item.signature))
      : null,
    item.replies.length > 0
      ? h('ol', { class: 'comment-replies', 'aria-label': 'Replies' }, ...item.replies.map((r) => commentItem(section, r, true, filesUrl)))
      : null)
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
        error.textContent = await errorMessage(response)
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

async function errorMessage(response: Response): Promise<string> {
  try {
    const body = (await response.json()) as { error?: unknown }
    if (typeof body.error === 'string' && body.error) return body.error
  } catch {
    // not JSON: fall through to the status
  }
  return `The comment was not posted (HTTP ${response.status}). Try again.`
}
