// A static server for trying the editor: serves dev.html, dist/ and the uk-dpia template.
// Usage: node dev-server.mjs [port]   (default 8124, loopback only)
import { createServer } from 'node:http'
import { readFile } from 'node:fs/promises'
import { extname, join, normalize } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = fileURLToPath(new URL('.', import.meta.url))
const templates = join(here, '..', 'server', 'domain', 'templates')
const port = Number(process.argv[2] ?? process.env.PORT ?? 8124)
const types = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
}

function resolve(pathname) {
  if (pathname === '/' || pathname === '/dev.html') return join(here, 'dev.html')
  if (pathname.startsWith('/dist/')) return join(here, normalize(pathname).replace(/^(\.\.[/\\])+/, ''))
  if (pathname.startsWith('/templates/')) return join(templates, normalize(pathname.slice('/templates/'.length)).replace(/^(\.\.[/\\])+/, ''))
  return null
}

createServer(async (request, response) => {
  const { pathname } = new URL(request.url ?? '/', 'http://localhost')
  const file = resolve(decodeURIComponent(pathname))
  if (file === null || !(file.startsWith(here) || file.startsWith(templates))) {
    response.writeHead(404).end('not found')
    return
  }
  try {
    const body = await readFile(file)
    response.writeHead(200, { 'Content-Type': types[extname(file)] ?? 'application/octet-stream', 'Cache-Control': 'no-store' })
    response.end(body)
  } catch {
    response.writeHead(404).end('not found')
  }
}).listen(port, '127.0.0.1', () => {
  console.log(`editor dev harness: http://127.0.0.1:${port}/dev.html?token=…`)
})
