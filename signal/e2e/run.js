#!/usr/bin/env node
// pane-signal end to end: the real gateway and the real core against Signal's own mock
// server. See README.md. Prints one line per scenario (pass/fail, seconds) and exits 1 when
// any failed.
//
//   node run.js [--libsignal-service DIR] [--signal-src DIR] [--core-bin FILE] [--release] [--only 1,2,4] [--keep]
//
// --signal-src builds pane-signal from another copy of signal/src (another revision, to
// compare); the manifest and lock are always signal/'s. --core-bin runs another pane-agent
// binary (a build of another revision of the core) instead of the root crate's. --release
// builds pane-signal with the release profile (the core stays a debug build).
// PANE_E2E_SEALED=1 runs a sealed installation (procs.js: SEALED): the core initialised
// sealed and unsealed with `pane-agent unseal` after each start, pane-signal given no
// passphrase; scenario 13 runs only then.
'use strict';

const http = require('node:http');
const net = require('node:net');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { build } = require('./build');
const { startMock } = require('./mock');
const { Core, Gateway, SEALED, within } = require('./procs');
const { Owner } = require('./owner');
const { SCENARIOS: BASE } = require('./scenarios');
const { throughTor } = require('./tor');

// 18 runs before 17 (as 13 does, in scenarios.js): once 17 has relinked, the mock still
// lists the unlinked device (its `PrimaryDevice.unlink` leaves the server's device list
// alone), every send also addresses it, and the mock answers those sends with HTTP 500
// (docs/signal-gateway.md).
const SCENARIOS = [...BASE];
SCENARIOS.splice(SCENARIOS.findIndex((s) => s.n === 17), 0, throughTor);

function parseArgs(argv) {
  const out = { libsignalService: undefined, signalSrc: undefined, coreBin: undefined, release: false, only: undefined, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--libsignal-service') out.libsignalService = argv[++i];
    else if (a === '--signal-src') out.signalSrc = argv[++i];
    else if (a === '--core-bin') out.coreBin = argv[++i];
    else if (a === '--only') out.only = new Set(argv[++i].split(',').map(Number));
    else if (a === '--keep') out.keep = true;
    else if (a === '--release') out.release = true;
    else throw new Error(`unknown argument ${a} (see README.md)`);
  }
  return out;
}

/** A free loopback port. */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/** An ntfy-like endpoint on loopback: every POST's body, in order. */
function startFallback() {
  const bodies = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      bodies.push({ method: req.method, body: Buffer.concat(chunks).toString(), at: Date.now() });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({ server, bodies, url: `http://127.0.0.1:${server.address().port}/pane-e2e` });
    });
  });
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'pane-signal-e2e-'));
  console.log(`work dir: ${work}`);
  console.log(`installation: ${SEALED ? 'sealed (PANE_E2E_SEALED=1)' : 'unsealed'}`);
  const built = build({ libsignalService: args.libsignalService, signalSrc: args.signalSrc, release: args.release });
  // Copies: a build started elsewhere during the run must not change what it restarts.
  fs.mkdirSync(path.join(work, 'bin'));
  const bins = {};
  for (const [name, file] of [['paneSignal', built.paneSignal], ['paneAgent', args.coreBin ?? built.paneAgent]]) {
    bins[name] = path.join(work, 'bin', path.basename(file));
    fs.copyFileSync(file, bins[name]);
    fs.chmodSync(bins[name], 0o755);
  }

  const serviceConfig = path.join(work, 'service-config.json');
  const mock = await startMock({ stateDir: path.join(work, 'mock'), configPath: serviceConfig });
  console.log(`mock server: ${mock.url}`);
  const agentAccount = await mock.server.createPrimaryDevice({ profileName: 'pane-agent' });
  const owner = new Owner(await mock.server.createPrimaryDevice({ profileName: 'Owner' }));
  mock.numbers.set(agentAccount.device.number, agentAccount.device.aci);

  // The second way to warn (`[alerts] fallback_url`): a local endpoint that keeps what it
  // is told; and the HTTP endpoint, for /healthz.
  const fallback = await startFallback();
  const httpPort = await freePort();
  const core = new Core({
    bin: bins.paneAgent,
    work,
    owner: owner.aci,
    edits: [
      ['listen = ""', `listen = "127.0.0.1:${httpPort}"`],
      ['fallback_url = ""', `fallback_url = "${fallback.url}"`],
      ['fallback_after_mins = 15', 'fallback_after_mins = 0.1'],
      ['unusable_after_secs = 300', 'unusable_after_secs = 10'],
    ],
  });
  await core.start();
  const gateway = new Gateway({
    bin: bins.paneSignal,
    work,
    dataDir: core.dir,
    serviceConfig,
  });
  const ctx = { work, mock, agentAccount, owner, core, gateway, linked: undefined, notes: [], fallback, httpPort };
  // Interrupted: stop what the harness started.
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
      for (const c of [gateway.child, core.child]) if (c && c.exitCode === null) c.kill('SIGKILL');
      process.exit(130);
    });
  }

  const results = [];
  for (const s of SCENARIOS) {
    if (args.only && !args.only.has(s.n)) continue;
    if (s.sealedOnly && !SEALED) continue;
    // Link is what every other scenario stands on.
    if (s.n !== 1 && !ctx.linked) {
      results.push({ n: s.n, name: s.name, pass: false, secs: 0, note: 'not run: no linked device' });
      continue;
    }
    // What an earlier scenario left on its way (a late reply) is not this one's.
    const leftover = await ctx.owner.drain(1500);
    if (leftover.length) ctx.notes.push(`before ${s.n}: ${leftover.length} late message(s) from earlier scenarios`);
    const start = Date.now();
    let pass = false;
    let note = '';
    try {
      note = (await within(s.timeout ?? 120000, `scenario ${s.n}`, s.run(ctx))) ?? '';
      pass = true;
    } catch (e) {
      note = e.message.split('\n')[0];
    }
    const secs = (Date.now() - start) / 1000;
    results.push({ n: s.n, name: s.name, pass, secs, note });
    console.log(`${pass ? 'PASS' : 'FAIL'} ${s.n}. ${s.name} (${secs.toFixed(1)} s) ${note}`);
  }

  await gateway.stop().catch(() => gateway.kill());
  await core.stop().catch(() => {});
  await mock.close();
  fallback.server.close();

  console.log('\n| # | scenario | result | time | note |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const r of results) {
    console.log(`| ${r.n} | ${r.name} | ${r.pass ? 'pass' : 'FAIL'} | ${r.secs.toFixed(1)} s | ${r.note} |`);
  }
  console.log('\nbridged mock mismatches (count):');
  for (const [what, n] of mock.bridged) console.log(`  ${n}x ${what}`);
  for (const n of ctx.notes) console.log(`note: ${n}`);
  // What presage sets account-wide on each connect (docs: "Account-wide settings").
  const shown = (a, k) => (k in a ? JSON.stringify(a[k]) : 'absent');
  for (const a of mock.accountAttributes) {
    const fields = ['registrationLock', 'pin', 'discoverableByPhoneNumber', 'unrestrictedUnidentifiedAccess'];
    console.log(`PUT /v1/accounts/attributes: ${fields.map((k) => `${k}=${shown(a, k)}`).join(' ')}`);
  }
  console.log(`logs: ${core.log}, ${gateway.log}`);
  if (!args.keep && results.every((r) => r.pass)) fs.rmSync(work, { recursive: true, force: true });
  return results.every((r) => r.pass) ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(2);
  },
);
