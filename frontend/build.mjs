// Builds src/main.ts into dist/editor.js and dist/editor.css (fixed names: the server links them).
import * as esbuild from 'esbuild'

const watch = process.argv.includes('--watch')
const options = {
  entryPoints: { editor: 'src/main.ts' },
  outdir: 'dist',
  bundle: true,
  format: 'esm',
  target: ['es2022'],
  minify: !watch,
  sourcemap: true,
  legalComments: 'linked',
  logLevel: 'info',
  define: { 'process.env.NODE_ENV': '"production"' },
}

if (watch) {
  const context = await esbuild.context(options)
  await context.watch()
} else {
  await esbuild.build(options)
}
