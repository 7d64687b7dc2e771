// The real processes the harness drives: `pane-agent` (the core) and `pane-signal` (the
// gateway), each with its log in the harness's temporary directory.
'use strict';

const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');

/** A test passphrase for the throwaway store (never a real one). */
const PASSPHRASE = 'e2e-only-store-passphrase-0123456789abcdef';

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
  constructor({ bin, work, owner }) {
    this.bin = bin;
    this.dir = path.join(work, 'pane');
    this.log = path.join(work, 'pane-agent.log');
    this.env = { ...baseEnv(work), PANE_DATA_DIR: this.dir };
    execFileSync(bin, ['init'], { env: this.env, stdio: 'ignore' });
    const config = path.join(this.dir, 'pane.toml');
    const text = fs.readFileSync(config, 'utf8');
    if (!text.includes('owner = ""')) throw new Error('pane.toml template has no [signal] owner');
    fs.writeFileSync(config, text.replace('owner = ""', `owner = "${owner}"`));
    this.child = undefined;
  }

  async start() {
    const log = fs.openSync(this.log, 'a');
    this.child = spawn(this.bin, ['run'], { env: this.env, stdio: ['ignore', 'ignore', log] });
    fs.closeSync(log);
    const sock = path.join(this.dir, 'agent.sock');
    await until(20000, 'pane-agent run', () => this.child.exitCode === null && canConnect(sock), 100);
  }

  async stop() {
    if (!this.child || this.child.exitCode !== null) return;
    const done = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    await within(20000, 'pane-agent stop', done);
  }

  /** A signed envelope (JSON text) for `cmd`, from `pane-agent sign`. */
  sign(cmd, pairs = []) {
    return execFileSync(this.bin, ['sign', cmd, ...pairs], { env: this.env }).toString().trim();
  }

  /** `pane-agent send`: the reply as JSON (the control socket keeps JSON). */
  send(cmd, pairs = []) {
    let out;
    try {
      out = execFileSync(this.bin, ['send', cmd, ...pairs], { env: this.env });
    } catch (e) {
      out = e.stdout;
    }
    return JSON.parse(out.toString());
  }

  /** `pane-agent <args>` at the console. */
  cli(args) {
    return execFileSync(this.bin, args, { env: this.env }).toString();
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
  constructor({ bin, work, dataDir, serviceConfig }) {
    this.bin = bin;
    this.dataDir = dataDir;
    this.log = path.join(work, 'pane-signal.log');
    this.env = {
      ...baseEnv(work),
      PANE_SIGNAL_PASSPHRASE: PASSPHRASE,
      PANE_SIGNAL_E2E_SERVICE_CONFIG: serviceConfig,
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

module.exports = { Core, Gateway, PASSPHRASE, sleep, within, until };
