// Builds the extension: type-checks (tsc), emits out/ for the tests, and
// bundles dist/extension.js (the extension with @credbroker/client and
// @grpc/grpc-js inside; `vscode` stays external) and media/form.js (the
// webview's script). Offline.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const esbuild = require('esbuild');
const dir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = join(dirname(require.resolve('typescript/package.json')), 'bin/tsc');

for (const project of ['tsconfig.json', 'tsconfig.webview.json']) {
  execFileSync(process.execPath, [tsc, '-p', join(dir, project)], { cwd: dir, stdio: 'inherit' });
}

await esbuild.build({
  entryPoints: [join(dir, 'src/extension.ts')],
  outfile: join(dir, 'dist/extension.js'),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node18',
  external: ['vscode'],
  minify: true,
  keepNames: true,
  sourcemap: false,
  logLevel: 'warning',
});

await esbuild.build({
  entryPoints: [join(dir, 'src/webview/form.ts')],
  outfile: join(dir, 'media/form.js'),
  bundle: true,
  platform: 'browser',
  format: 'iife',
  target: 'es2020',
  logLevel: 'warning',
});
