// Scenario 18 (issue #25): the gateway reaches Signal only through `[network] proxy`.
//
// A SOCKS5 server on loopback (socks.js) stands in for Tor: it resolves names from its own
// table and opens its outgoing connections from 127.0.0.2, and the mock records the peer of
// every connection it accepts. The core's pane.toml gets `[network] proxy` (and loses its
// loopback `[alerts] fallback_url`, which a core with a proxy refuses), the gateway is given
// Signal's URLs by name (`localhost`, the one name the mock's certificate holds), and then:
// linking (up to the provisioning address) and a command with its reply go through the
// proxy, with the name sent to it;
// with the proxy down the link is reported down and nothing reaches Signal; back up, the
// message sent meanwhile is answered once. Everything is put back as it was at the end.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { Socks } = require('./socks');
const { helpers } = require('./scenarios');
const { spawn } = require('node:child_process');
const { PASSPHRASE, sleep, until, within } = require('./procs');

const { assert, fresh, gatewaySaw, healthSays, isEmptyList, onceEach, until_message } = helpers;

/** The SOCKS server's outgoing address, as the mock sees a peer. */
const PROXY_PEER = '127.0.0.2';

/** Connections the mock accepted from anywhere but the proxy, after the `from`-th. */
function direct(mock, from) {
  return mock.peers.slice(from).filter((p) => p.address.replace(/^::ffff:/, '') !== PROXY_PEER);
}

/** `pane-agent doctor`'s output, whatever its exit code. */
function doctor(core) {
  try {
    return core.cli(['doctor']);
  } catch (e) {
    return `${e.stdout ?? ''}`;
  }
}

/**
 * `pane-signal link` in a new data dir whose pane.toml names `socks`, with Signal's URLs in
 * `serviceConfig`: resolves with the provisioning URL it prints (which it can only have from
 * the mock), then stops it before a device is linked.
 */
async function linkUntilUrl(ctx, socks, serviceConfig) {
  const dir = path.join(ctx.work, 'tor-link');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'pane.toml'), `[network]\nproxy = "${socks.url}"\n`);
  const child = spawn(ctx.gateway.bin, ['link', '--data-dir', dir, '--device-name', 'pane-e2e-tor'], {
    env: { ...ctx.gateway.env, PANE_SIGNAL_PASSPHRASE: PASSPHRASE, PANE_SIGNAL_E2E_SERVICE_CONFIG: serviceConfig },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise((r) => child.once('exit', r));
  try {
    return await within(
      60000,
      'pane-signal link through the proxy printing its provisioning URL',
      new Promise((resolve, reject) => {
        child.stdout.on('data', (d) => {
          out += d;
          const m = out.match(/Provisioning URL \(for a QR generator elsewhere\): (\S+)/);
          if (m) resolve(m[1]);
        });
        child.once('exit', (code) => reject(new Error(`pane-signal link exited ${code}: ${err.trim().split('\n').pop()}`)));
      }),
    );
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
}

/** The core and the gateway stopped, `edit` applied, both started again. */
async function restartWith(ctx, edit) {
  await ctx.gateway.stop();
  await ctx.core.stop();
  edit();
  await ctx.core.start();
  ctx.gateway.start();
}

const throughTor = {
  n: 18,
  name: 'Through Tor: every connection to Signal through [network] proxy; proxy down, nothing direct; back, answered once',
  timeout: 480000,
  async run(ctx) {
    const { core, gateway, owner, mock } = ctx;
    const socks = await new Socks({ names: { localhost: '127.0.0.1' } }).start();
    const config = path.join(core.dir, 'pane.toml');
    const before = fs.readFileSync(config, 'utf8');
    const serviceConfig = gateway.env.PANE_SIGNAL_E2E_SERVICE_CONFIG;
    const byName = path.join(ctx.work, 'service-config-by-name.json');
    fs.writeFileSync(byName, fs.readFileSync(serviceConfig, 'utf8').replaceAll('https://127.0.0.1:', 'https://localhost:'));
    try {
      const peersFrom = mock.peers.length;
      // Linking goes through it too: `pane-signal link` in a data dir of its own, whose
      // pane.toml names the proxy, gets its provisioning address from the mock over the
      // provisioning websocket (and is stopped there: a second device is not linked).
      const provisioned = await linkUntilUrl(ctx, socks, byName);
      assert(socks.connects.length >= 1, 'pane-signal link made no CONNECT through the proxy');
      const logFrom = gateway.logs().length;
      await restartWith(ctx, () => {
        const text = before
          .replace(/^proxy = ""$/m, `proxy = "${socks.url}"`)
          .replace(/^fallback_url = ".*"$/m, 'fallback_url = ""');
        assert(text.includes(`proxy = "${socks.url}"`), 'pane.toml has no `proxy = ""` line to set');
        fs.writeFileSync(config, text);
        gateway.env.PANE_SIGNAL_E2E_SERVICE_CONFIG = byName;
      });
      await until(20000, 'the gateway logging that it goes through the proxy', () =>
        gatewaySaw(ctx, 'Signal traffic goes through [network] proxy', logFrom).length > 0, 250);

      // The gateway's first health line on its new connection names the proxy (the core
      // kept the last one from before the restart until then).
      let h = {};
      await until(90000, `health naming ${socks.url}`, () => {
        h = core.send('health');
        return h.status === 'ok' && h.signal?.proxy === socks.url;
      }, 500).catch((e) => {
        throw new Error(`${e.message} (last: ${JSON.stringify(h.signal ?? h).slice(0, 160)})`);
      });

      await owner.send(ctx.linked, core.sign('list'));
      const got = await until_message(owner, (m) => isEmptyList(m.body), 60000, 'the reply through the proxy');
      assert(onceEach(fresh(ctx, got, 'scenario 18')), 'a message arrived twice');
      const doctorSays = doctor(core).split('\n').find((l) => l.includes('signal traffic')) ?? '';
      assert(doctorSays.includes(socks.url), `doctor: ${doctorSays || 'no signal traffic row'}`);

      let leaked = direct(mock, peersFrom);
      assert(leaked.length === 0, `${leaked.length} connection(s) reached Signal directly (from ${leaked[0]?.address})`);
      const connects = socks.connects.slice();
      assert(connects.length >= 2, `${connects.length} CONNECT(s) through the proxy (want the link's and the run's)`);
      assert(provisioned.startsWith('sgnl://'), `link printed ${provisioned.slice(0, 20)}`);
      const odd = connects.filter((c) => c.user !== 'pane-signal' || !(c.password?.length >= 32) || c.atyp !== 'domain' || c.host !== 'localhost');
      assert(odd.length === 0, `a CONNECT without the gateway's circuit or by address: ${JSON.stringify(odd[0])}`);
      const circuits = new Set(connects.map((c) => c.password)).size;

      // The proxy goes away: the link is reported down and nothing reaches Signal directly.
      const peersDown = mock.peers.length;
      const connectsDown = socks.connects.length;
      await socks.stop();
      await healthSays(ctx, 'signal_disconnected', 90000);
      // The mock settles a send once the device takes it: awaited when the proxy is back.
      const sent = owner.send(ctx.linked, core.sign('list'));
      sent.catch(() => {});
      await sleep(8000);
      leaked = direct(mock, peersDown);
      assert(leaked.length === 0, `${leaked.length} connection(s) reached Signal directly while the proxy was down`);
      assert(mock.peers.length === peersDown, 'a connection reached Signal while the proxy was down');

      // Back: the message sent meanwhile is answered, once.
      await socks.start();
      await healthSays(ctx, 'ok', 120000);
      await within(60000, "the owner's message sent during the outage", sent);
      const after = fresh(ctx, await until_message(owner, (m) => isEmptyList(m.body), 90000, 'the reply once the proxy is back', 8000), 'scenario 18');
      const replies = after.filter((m) => isEmptyList(m.body));
      assert(replies.length === 1, `${replies.length} replies after the proxy came back (want 1)`);
      leaked = direct(mock, peersFrom);
      assert(leaked.length === 0, `${leaked.length} connection(s) reached Signal directly`);
      assert(socks.connects.length > connectsDown, 'no CONNECT after the proxy came back');
      return (
        `${socks.connects.length} CONNECTs through the proxy (user pane-signal, ${circuits} circuit(s) before the outage, ` +
        `name "localhost" sent to it), ${mock.peers.length - peersFrom} connections at the mock, all from ${PROXY_PEER}, 0 direct; ` +
        `proxy down: health signal_disconnected, 0 connections; back: answered once; doctor "${doctorSays.trim().slice(0, 70)}…"`
      );
    } finally {
      await restartWith(ctx, () => {
        fs.writeFileSync(config, before);
        gateway.env.PANE_SIGNAL_E2E_SERVICE_CONFIG = serviceConfig;
      }).catch(() => {});
      await socks.stop().catch(() => {});
    }
  },
};

module.exports = { throughTor };
