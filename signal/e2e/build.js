// Builds what the harness runs: `pane-agent` from the root crate as it is, and `pane-signal`
// against a copy of the pinned libsignal-service revision with libsignal-service-mock.patch
// applied (its ServiceConfiguration read from the file the harness writes). The product build
// is untouched: the patched checkout and a copy of signal/'s manifest and lock live in a
// temporary directory, and the patch reaches cargo only through `--config 'patch...'`.
'use strict';

const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const E2E = __dirname;
const SIGNAL = path.dirname(E2E);
const ROOT = path.dirname(SIGNAL);
const LSS_URL = 'https://github.com/whisperfish/libsignal-service-rs';

/** The libsignal-service revision signal/Cargo.lock pins. */
function pinnedRevision() {
  const lock = fs.readFileSync(path.join(SIGNAL, 'Cargo.lock'), 'utf8');
  const m = lock.match(/source = "git\+https:\/\/github\.com\/whisperfish\/libsignal-service-rs\?rev=([0-9a-f]{40})#/);
  if (!m) throw new Error('signal/Cargo.lock pins no libsignal-service revision');
  return m[1];
}

/**
 * A checkout of `rev`: `given` (an argument), else cargo's git cache
 * ($CARGO_HOME/git/checkouts/libsignal-service-rs-*\/<short rev>), which
 * `cargo fetch --locked` in signal/ fills.
 */
function findCheckout(rev, given) {
  if (given) {
    if (!fs.existsSync(path.join(given, 'src', 'configuration.rs'))) {
      throw new Error(`${given} is not a libsignal-service checkout`);
    }
    return given;
  }
  const home = process.env.CARGO_HOME || path.join(os.homedir(), '.cargo');
  const checkouts = path.join(home, 'git', 'checkouts');
  const dirs = fs.existsSync(checkouts)
    ? fs.readdirSync(checkouts).filter((d) => d.startsWith('libsignal-service-rs-'))
    : [];
  for (const d of dirs) {
    for (const short of fs.readdirSync(path.join(checkouts, d))) {
      if (rev.startsWith(short)) return path.join(checkouts, d, short);
    }
  }
  throw new Error(
    `no checkout of libsignal-service ${rev} in ${checkouts}: run \`cargo fetch --locked\` ` +
      'in signal/ first, or pass --libsignal-service DIR',
  );
}

function run(cmd, args, opts) {
  execFileSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], ...opts });
}

/** Nice cargo: the machines this runs on are shared. */
function cargo(args, cwd) {
  run('nice', ['-n', '10', 'cargo', ...args], { cwd });
}

/**
 * Builds both binaries; returns their paths. `work` is the harness's temporary directory.
 */
function build({ work, libsignalService }) {
  const rev = pinnedRevision();
  const checkout = findCheckout(rev, libsignalService);
  const patched = path.join(work, 'libsignal-service');
  fs.cpSync(checkout, patched, {
    recursive: true,
    filter: (src) => path.basename(src) !== '.git',
  });
  run('patch', ['-p1', '--quiet', '-d', patched, '-i', path.join(E2E, 'libsignal-service-mock.patch')]);

  // signal/ as a crate in the temporary directory: same manifest (the path to the root
  // crate made absolute), same lock, same sources.
  const crate = path.join(work, 'pane-signal');
  fs.mkdirSync(crate);
  const manifest = fs
    .readFileSync(path.join(SIGNAL, 'Cargo.toml'), 'utf8')
    .replace('pane-agent = { path = ".." }', `pane-agent = { path = ${JSON.stringify(ROOT)} }`);
  if (!manifest.includes(JSON.stringify(ROOT))) {
    throw new Error('signal/Cargo.toml: the pane-agent path dependency is not `path = ".."`');
  }
  fs.writeFileSync(path.join(crate, 'Cargo.toml'), manifest);
  fs.copyFileSync(path.join(SIGNAL, 'Cargo.lock'), path.join(crate, 'Cargo.lock'));
  fs.symlinkSync(path.join(SIGNAL, 'src'), path.join(crate, 'src'));

  const target = process.env.CARGO_TARGET_DIR || path.join(E2E, 'target');
  const patch = `patch."${LSS_URL}".libsignal-service.path=${JSON.stringify(patched)}`;
  console.log(`building pane-signal (libsignal-service ${rev.slice(0, 8)} + the mock patch)`);
  cargo(['build', '--bin', 'pane-signal', '--target-dir', target, '--config', patch], crate);
  console.log('building pane-agent (root crate)');
  cargo(['build', '--locked', '--bin', 'pane-agent'], ROOT);
  const rootTarget = process.env.CARGO_TARGET_DIR || path.join(ROOT, 'target');
  return {
    paneSignal: path.join(target, 'debug', 'pane-signal'),
    paneAgent: path.join(rootTarget, 'debug', 'pane-agent'),
    rev,
  };
}

module.exports = { build, ROOT, SIGNAL };
