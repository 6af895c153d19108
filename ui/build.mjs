// Bundles the web UI with esbuild: node build.mjs OUT_DIR
// Writes OUT_DIR/index.html, OUT_DIR/assets/main-HASH.{js,css} and OUT_DIR/manifest.txt (the
// files to embed, one a line), which src/server/ui/generator/embed_ui.cc compiles into the
// binary. The hashed names let the server cache the assets for a year.
import * as esbuild from 'esbuild';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2];
if (!out) {
  console.error('usage: node build.mjs OUT_DIR');
  process.exit(2);
}
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'assets'), { recursive: true });

const result = await esbuild.build({
  entryPoints: [join(here, 'src/main.tsx')],
  absWorkingDir: here,
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outdir: join(out, 'assets'),
  entryNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  legalComments: 'eof',
  metafile: true,
  logLevel: 'warning',
});

const files = Object.keys(result.metafile.outputs).map((f) => relative(out, join(here, f)));
const js = files.find((f) => f.endsWith('.js'));
const css = files.find((f) => f.endsWith('.css'));
const html = readFileSync(join(here, 'index.html'), 'utf8')
  .replace('%CSS%', css ? `<link rel="stylesheet" href="/${css}">` : '')
  .replace('%JS%', `<script type="module" src="/${js}"></script>`);
writeFileSync(join(out, 'index.html'), html);
writeFileSync(join(out, 'manifest.txt'), ['index.html', ...files].sort().join('\n') + '\n');
