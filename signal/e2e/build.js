// Builds what the harness runs: `pane-agent` from the root crate as it is, and `pane-signal`
// against a copy of the pinned libsignal-service revision with libsignal-service-mock.patch
// applied (its ServiceConfiguration read from the file the harness writes). The product build
// is untouched: the patched checkout and a copy of signal/'s manifest and lock live in the
// build's target directory, and the patch reaches cargo only through `--config 'patch...'`.
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
 * Builds both binaries; returns their paths.
 */
/** Writes `text` to `file` only when it differs (cargo rebuilds what looks changed). */
function writeIfChanged(file, text) {
  if (!fs.existsSync(file) || fs.readFileSync(file, 'utf8') !== text) fs.writeFileSync(file, text);
}

function build({ libsignalService, signalSrc, release }) {
  const rev = pinnedRevision();
  const checkout = findCheckout(rev, libsignalService);
  const target = process.env.PANE_E2E_TARGET_DIR || path.join(E2E, 'target');
  // Kept beside the build (not in each run's temporary directory), so that a second run
  // rebuilds only what changed.
  const work = path.join(target, 'e2e-build');
  fs.mkdirSync(work, { recursive: true });
  const patchFile = path.join(E2E, 'libsignal-service-mock.patch');
  const stamp = `${rev}\n${fs.readFileSync(patchFile, 'utf8')}`;
  const patched = path.join(work, 'libsignal-service');
  const stampFile = path.join(work, 'libsignal-service.stamp');
  if (!fs.existsSync(stampFile) || fs.readFileSync(stampFile, 'utf8') !== stamp) {
    fs.rmSync(patched, { recursive: true, force: true });
    fs.cpSync(checkout, patched, {
      recursive: true,
      preserveTimestamps: true,
      filter: (src) => path.basename(src) !== '.git',
    });
    run('patch', ['-p1', '--quiet', '-d', patched, '-i', patchFile]);
    fs.writeFileSync(stampFile, stamp);
  }

  // signal/ as a crate beside it: same manifest (the path to the protocol crate made
  // absolute), same lock, the sources by symlink. One crate directory per source directory:
  // cargo goes by file times, and would not see a symlink switched to older files.
  const src = signalSrc ? path.resolve(signalSrc) : path.join(SIGNAL, 'src');
  const srcId = require('node:crypto').createHash('sha256').update(src).digest('hex').slice(0, 12);
  const crate = path.join(work, `pane-signal-${srcId}`);
  fs.mkdirSync(crate, { recursive: true });
  const protocol = path.join(ROOT, 'protocol');
  const manifest = fs
    .readFileSync(path.join(SIGNAL, 'Cargo.toml'), 'utf8')
    .replace(
      'pane-protocol = { path = "../protocol" }',
      `pane-protocol = { path = ${JSON.stringify(protocol)} }`,
    );
  if (!manifest.includes(JSON.stringify(protocol))) {
    throw new Error(
      'signal/Cargo.toml: the pane-protocol path dependency is not `path = "../protocol"`',
    );
  }
  writeIfChanged(path.join(crate, 'Cargo.toml'), manifest);
  // cargo rewrites the copy's lock for the patch; start again from signal/'s when it changed.
  const lock = fs.readFileSync(path.join(SIGNAL, 'Cargo.lock'), 'utf8');
  const orig = path.join(crate, 'Cargo.lock.orig');
  if (!fs.existsSync(orig) || fs.readFileSync(orig, 'utf8') !== lock) {
    fs.writeFileSync(path.join(crate, 'Cargo.lock'), lock);
    fs.writeFileSync(orig, lock);
  }
  const link = path.join(crate, 'src');
  if (!fs.existsSync(link)) fs.symlinkSync(src, link);
  // The build script that reads the pinned revisions (from Cargo.lock.orig here).
  const buildRs = path.join(crate, 'build.rs');
  if (!fs.existsSync(buildRs)) fs.symlinkSync(path.join(SIGNAL, 'build.rs'), buildRs);

  const patch = `patch."${LSS_URL}".libsignal-service.path=${JSON.stringify(patched)}`;
  console.log(`building pane-signal (libsignal-service ${rev.slice(0, 8)} + the mock patch)`);
  const profile = release ? ['--release'] : [];
  cargo(['build', ...profile, '--bin', 'pane-signal', '--target-dir', target, '--config', patch], crate);
  // The root crate where it is always built (its own target dir, or CARGO_TARGET_DIR).
  console.log('building pane-agent (root crate)');
  cargo(['build', '--locked', '--bin', 'pane-agent'], ROOT);
  const rootTarget = process.env.CARGO_TARGET_DIR || path.join(ROOT, 'target');
  return {
    paneSignal: path.join(target, release ? 'release' : 'debug', 'pane-signal'),
    crate,
    paneAgent: path.join(rootTarget, 'debug', 'pane-agent'),
    rev,
  };
}

module.exports = { build, ROOT, SIGNAL };
