// The credential form's page: an empty shell that loads media/form.js and
// media/form.css under a strict Content-Security-Policy. No broker text is
// ever put in this HTML: the script renders the form from an `init` message.
import { randomBytes } from 'node:crypto';

export interface FormPageOptions {
  // The webview's cspSource (vscode-webview://… in VS Code, the harness's
  // origin in tests).
  cspSource: string;
  scriptUri: string;
  styleUri: string;
  nonce?: string;
}

export function makeNonce(): string {
  return randomBytes(18).toString('base64url');
}

function attr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

// The Content-Security-Policy: nothing by default; the stylesheet from the
// extension's own files; the one script that carries the nonce; no inline
// code, no frames, no form posts, no network.
export function contentSecurityPolicy(cspSource: string, nonce: string): string {
  return [
    "default-src 'none'",
    `style-src ${cspSource}`,
    `img-src ${cspSource}`,
    `font-src ${cspSource}`,
    `script-src 'nonce-${nonce}'`,
    "connect-src 'none'",
    "form-action 'none'",
    "frame-src 'none'",
    "base-uri 'none'",
  ].join('; ');
}

export function renderFormPage(o: FormPageOptions): string {
  const nonce = o.nonce ?? makeNonce();
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${attr(contentSecurityPolicy(o.cspSource, nonce))}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${attr(o.styleUri)}">
<title>Credential form</title>
</head>
<body>
<main id="app" aria-live="polite"><p>Loading the credential form…</p></main>
<script nonce="${attr(nonce)}" src="${attr(o.scriptUri)}"></script>
</body>
</html>
`;
}
