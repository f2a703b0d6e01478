// Where the broker is: the extension's settings resolved the way credctl
// resolves its flags. No VS Code import, so that it can be tested alone.
import { constants as fsConstants, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import type { ConnectOptions } from '@credbroker/client';
import { defaultDataDir } from '@credbroker/client';

export interface Settings {
  address: string;
  socketPath: string;
  tokenFile: string;
  dataDir: string;
  tlsCaFile: string;
  brokerPath: string;
}

export interface Resolved {
  options: ConnectOptions;
  dataDir: string;
  address: string;
  tokenFile: string;
  // The settings named a data directory or socket of their own (passed to
  // credbrokerd by "Start broker").
  explicitDataDir: boolean;
}

function expandHome(p: string, env: NodeJS.ProcessEnv): string {
  if (p === '~') return env.HOME ?? os.homedir();
  if (p.startsWith('~/')) return path.join(env.HOME ?? os.homedir(), p.slice(2));
  return p;
}

// The data directory: the setting, else credbrokerd's own default
// ($CREDBROKER_DATA_DIR, else $XDG_DATA_HOME/credbroker, else
// ~/.local/share/credbroker).
export function dataDirOf(s: Settings, env: NodeJS.ProcessEnv = process.env): string {
  if (s.dataDir.trim() !== '') return expandHome(s.dataDir.trim(), env);
  return defaultDataDir(env);
}

export function resolveSettings(s: Settings, env: NodeJS.ProcessEnv = process.env): Resolved {
  const dataDir = dataDirOf(s, env);
  let address = s.address.trim();
  if (address === '' && s.socketPath.trim() !== '') {
    address = `unix:${expandHome(s.socketPath.trim(), env)}`;
  }
  if (address === '') address = `unix:${path.join(dataDir, 'broker.sock')}`;
  if (address.startsWith('unix:~')) address = `unix:${expandHome(address.slice(5), env)}`;
  const tokenFile = s.tokenFile.trim() !== ''
    ? expandHome(s.tokenFile.trim(), env)
    : path.join(dataDir, 'approver.token');
  const options: ConnectOptions = { address, dataDir, tokenFile, timeoutMs: 15_000 };
  if (s.tlsCaFile.trim() !== '') options.tlsCaFile = expandHome(s.tlsCaFile.trim(), env);
  return { options, dataDir, address, tokenFile, explicitDataDir: s.dataDir.trim() !== '' };
}

// The credbrokerd to start: the setting as a path, or looked up on PATH.
// undefined when there is none.
export async function findBroker(brokerPath: string, env: NodeJS.ProcessEnv = process.env):
    Promise<string | undefined> {
  const name = expandHome(brokerPath.trim() === '' ? 'credbrokerd' : brokerPath.trim(), env);
  const executable = async (p: string): Promise<boolean> => {
    try {
      await fs.access(p, fsConstants.X_OK);
      return (await fs.stat(p)).isFile();
    } catch {
      return false;
    }
  };
  if (name.includes('/')) return (await executable(name)) ? path.resolve(name) : undefined;
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, name);
    if (await executable(candidate)) return candidate;
  }
  return undefined;
}
