/** The configuration the server renders into `#dpia-editor[data-config]`. */
import type { Template } from './template'

export type Role = 'owner' | 'editor' | 'commenter' | 'dpo' | 'viewer'

export interface User { id: string; name: string; org?: string; color: string }

export interface EditorConfig {
  dpiaId: string
  wsUrl: string
  token: string | null
  /** Where a page whose token stands in for a person renews it (read-only links). */
  tokenUrl?: string | null
  tokenSeconds?: number
  role: Role
  user: User
  template: Template
  commentsUrl: string | null
  /** The viewer's participant id on this DPIA (to know their own comments), or null. */
  participantId?: number | null
  csrfToken: string | null
  title?: string
  /** Why nobody may change this DPIA (approved or closed), or null. */
  locked?: string | null
  /** Each section's review state as the server saw it when the page loaded. */
  reviewStates?: Record<string, string>
  /** What the page says of the person's standing, in the server's words
   * (server/domain/wording.py): "Editing as an owner". */
  roleNote?: string
}

const ROLES: Role[] = ['owner', 'editor', 'commenter', 'dpo', 'viewer']

export class ConfigError extends Error {}

export function readConfig(element: HTMLElement): EditorConfig {
  const raw = element.dataset.config
  if (!raw) throw new ConfigError('the editor element has no data-config attribute')
  let config: EditorConfig
  try {
    config = JSON.parse(raw) as EditorConfig
  } catch {
    throw new ConfigError('data-config is not valid JSON')
  }
  if (typeof config.dpiaId !== 'string' || !config.dpiaId) throw new ConfigError('dpiaId is missing')
  if (typeof config.wsUrl !== 'string' || !config.wsUrl) throw new ConfigError('wsUrl is missing')
  if (!ROLES.includes(config.role)) throw new ConfigError(`unknown role ${String(config.role)}`)
  if (!config.user || typeof config.user.name !== 'string') throw new ConfigError('user is missing')
  if (!config.template || !Array.isArray(config.template.sections)) {
    throw new ConfigError('template is missing')
  }
  if (!/^#[0-9a-fA-F]{6}$/.test(config.user.color ?? '')) config.user.color = '#1f77b4'
  config.token = config.token ?? null
  config.commentsUrl = config.commentsUrl ?? null
  config.participantId = typeof config.participantId === 'number' ? config.participantId : null
  config.csrfToken = config.csrfToken ?? null
  config.locked = typeof config.locked === 'string' ? config.locked : null
  config.reviewStates = config.reviewStates ?? {}
  config.roleNote = typeof config.roleNote === 'string' ? config.roleNote : ''
  return config
}

export const canEdit = (role: Role): boolean => role === 'editor' || role === 'owner'
export const canComment = (role: Role): boolean => role !== 'viewer'
