// The real processes the harness drives: `pane-agent` (the core) and `pane-signal` (the
// gateway), each with its log in the harness's temporary directory.
'use strict';

const { spawn, execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');

/** A test passphrase for the throwaway store (never a real one). */
const PASSPHRASE = 'e2e-only-store-passphrase-0123456789abcdef';

/** The unseal passphrase of a sealed test installation (never a real one). */
const UNSEAL = 'e2e-only-unseal-passphrase-correct-horse-battery';

/**
 * A sealed installation (PANE_E2E_SEALED=1): `pane-agent init` seals the core's store and
 * generates the Signal store's passphrase into it; `pane-agent run` starts sealed and is
 * unsealed with `pane-agent unseal` (the passphrase on stdin) after every start; and
 * `pane-signal` runs without a passphrase, taking it from the core (`store_key`).
 */
const SEALED = process.env.PANE_E2E_SEALED === '1';

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resolves `p`, or rejects after `ms` with `what` timed out. */
function within(ms, what, p) {
  let timer;
  return Promise.race([
    p,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms / 1000} s`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Checks every `every` ms (1 s by default: checks that ask the core count against its
 * rate limits) until `check` is true. */
async function until(ms, what, check, every = 1000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms / 1000} s`);
    await sleep(every);
  }
}

/** The base environment of both binaries: no secrets from the host. */
function baseEnv(work) {
  return {
    PATH: process.env.PATH,
    HOME: work,
    RUST_LOG: process.env.PANE_E2E_RUST_LOG || 'info,pane_signal=debug',
    RUST_BACKTRACE: '1',
  };
}

class Core {
  constructor({ bin, work, owner, sealed = SEALED, edits = [] }) {
    this.bin = bin;
    this.sealed = sealed;
    this.dir = path.join(work, 'pane');
    this.log = path.join(work, 'pane-agent.log');
    this.env = { ...baseEnv(work), PANE_DATA_DIR: this.dir };
    // A core that can seal makes a sealed installation unless told `--unsealed`; an older
    // one has no such flag and is always unsealed.
    const help = execFileSync(bin, ['init', '--help'], { env: this.env }).toString();
    const canSeal = help.includes('--unsealed');
    if (sealed && !canSeal) throw new Error('PANE_E2E_SEALED=1, but this pane-agent init cannot seal');
    const init = sealed || !canSeal ? ['init'] : ['init', '--unsealed'];
    // Sealed, a secret init makes lives only in the sealed store, where `sign` cannot read
    // it: the harness chooses the command secret and gives it in AGENT_SECRET to init (which
    // seals it in), to `run` and to `sign` and `send`.
    this.secret = sealed ? crypto.randomBytes(32).toString('hex') : undefined;
    if (this.secret) this.env.AGENT_SECRET = this.secret;
    execFileSync(bin, init, {
      env: this.env,
      input: sealed ? `${UNSEAL}\n` : '',
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    this.cliEnv = this.env;
    const config = path.join(this.dir, 'pane.toml');
    const text = fs.readFileSync(config, 'utf8');
    if (!text.includes('owner = ""')) throw new Error('pane.toml template has no [signal] owner');
    let edited = text.replace('owner = ""', `owner = "${owner}"`);
    // The harness's own settings (the HTTP endpoint, [alerts]), where this core has them.
    for (const [from, to] of edits) edited = edited.replace(from, to);
    fs.writeFileSync(config, edited);
    this.child = undefined;
  }

  async start() {
    const log = fs.openSync(this.log, 'a');
    this.child = spawn(this.bin, ['run'], { env: this.env, stdio: ['ignore', 'ignore', log] });
    fs.closeSync(log);
    const sock = path.join(this.dir, 'agent.sock');
    await until(20000, 'pane-agent run', () => this.child.exitCode === null && canConnect(sock), 100);
    if (this.sealed) await this.unseal();
  }

  /** `pane-agent unseal`, the passphrase on stdin, until the running core takes it. */
  async unseal() {
    let why = '';
    await until(
      20000,
      'pane-agent unseal',
      () => {
        try {
          execFileSync(this.bin, ['unseal'], { env: this.env, input: `${UNSEAL}\n`, stdio: ['pipe', 'ignore', 'pipe'] });
          return true;
        } catch (e) {
          why = (e.stderr ?? '').toString().trim();
          if (this.child.exitCode !== null) throw new Error(`pane-agent run exited: ${why}`);
          return false;
        }
      },
      250,
    ).catch((e) => {
      throw new Error(`${e.message}: ${why}`);
    });
  }

  /** SIGKILL: the core stops without sealing (the gateway keeps its store open). */
  async kill() {
    if (!this.child || this.child.exitCode !== null) return;
    const done = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGKILL');
    await done;
  }

  /**
   * The Signal store's passphrase as the core hands it to a gateway: the first line of a
   * connection to gateway.sock (a sealed installation; stop pane-signal first, since the
   * core serves one gateway at a time).
   */
  async storeKey() {
    const sock = path.join(this.dir, 'gateway.sock');
    const line = await within(
      10000,
      'store_key from the core',
      new Promise((resolve, reject) => {
        let buf = '';
        const s = net.connect(sock);
        s.on('data', (d) => {
          buf += d;
          const nl = buf.indexOf('\n');
          if (nl >= 0) {
            s.destroy();
            resolve(buf.slice(0, nl));
          }
        });
        s.on('error', reject);
        s.on('close', () => reject(new Error('the core closed the connection without a line')));
      }),
    );
    const msg = JSON.parse(line);
    if (msg.type !== 'store_key') throw new Error(`the core's first line is ${msg.type}, not store_key`);
    return msg.passphrase;
  }

  async stop() {
    if (!this.child || this.child.exitCode !== null) return;
    const done = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    await within(20000, 'pane-agent stop', done);
  }

  /** A signed envelope (JSON text) for `cmd`, from `pane-agent sign`. */
  sign(cmd, pairs = []) {
    return execFileSync(this.bin, ['sign', cmd, ...pairs], { env: this.cliEnv }).toString().trim();
  }

  /** `pane-agent send`: the reply as JSON (the control socket keeps JSON). */
  send(cmd, pairs = []) {
    let out;
    try {
      out = execFileSync(this.bin, ['send', cmd, ...pairs], { env: this.cliEnv });
    } catch (e) {
      out = e.stdout;
    }
    return JSON.parse(out.toString());
  }

  /** `pane-agent <args>` at the console. */
  cli(args) {
    return execFileSync(this.bin, args, { env: this.cliEnv }).toString();
  }

  logs() {
    return fs.existsSync(this.log) ? fs.readFileSync(this.log, 'utf8') : '';
  }
}

function canConnect(sock) {
  if (!fs.existsSync(sock)) return false;
  return new Promise((resolve) => {
    const s = net.connect(sock, () => {
      s.end();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

class Gateway {
  constructor({ bin, work, dataDir, serviceConfig, sealed = SEALED }) {
    this.bin = bin;
    this.dataDir = dataDir;
    this.sealed = sealed;
    this.log = path.join(work, 'pane-signal.log');
    // Sealed: no passphrase of its own; it waits for the core's store_key.
    this.env = {
      ...baseEnv(work),
      ...(sealed ? {} : { PANE_SIGNAL_PASSPHRASE: PASSPHRASE }),
      PANE_SIGNAL_E2E_SERVICE_CONFIG: serviceConfig,
      // A refused registration is tried again every 5 minutes; the scenarios that give it
      // back need not wait that long.
      PANE_SIGNAL_REFUSED_RETRY_SECS: '3',
    };
    this.child = undefined;
  }

  /**
   * `pane-signal link`: calls `onUrl(url)` with the provisioning URL it prints, resolves
   * with {code, stdout, stderr} when it exits.
   */
  link(args, onUrl) {
    const child = spawn(this.bin, ['link', '--data-dir', this.dataDir, ...args], {
      env: this.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let told = false;
    child.stdout.on('data', (d) => {
      stdout += d;
      const m = stdout.match(/Provisioning URL \(for a QR generator elsewhere\): (\S+)/);
      if (m && !told && onUrl) {
        told = true;
        onUrl(m[1]);
      }
    });
    child.stderr.on('data', (d) => {
      stderr += d;
      fs.appendFileSync(this.log, d);
    });
    return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
  }

  start() {
    const log = fs.openSync(this.log, 'a');
    this.child = spawn(this.bin, ['run', '--data-dir', this.dataDir], {
      env: this.env,
      stdio: ['ignore', 'ignore', log],
    });
    fs.closeSync(log);
    this.exited = new Promise((r) => this.child.once('exit', (code, signal) => r({ code, signal })));
  }

  async stop() {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    return within(20000, 'pane-signal stop', this.exited);
  }

  async kill() {
    if (!this.child || this.child.exitCode !== null) return;
    this.child.kill('SIGKILL');
    return this.exited;
  }

  logs() {
    return fs.existsSync(this.log) ? fs.readFileSync(this.log, 'utf8') : '';
  }
}

module.exports = { Core, Gateway, PASSPHRASE, SEALED, sleep, within, until };
