// Signal's own mock server (@signalapp/mock-server) on loopback, with the bridges that
// libsignal-service-rs needs to talk to it. Nothing in node_modules is changed: each bridge
// is added at run time here, counted, and described in docs/signal-gateway.md ("Mock server
// mismatches"), so it can be reported upstream with the request the client sends and what
// the mock expects.
'use strict';

// The mock calls Promise.withResolvers (Node >= 22).
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers() {
    let resolve;
    let reject;
    const promise = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}

const crypto = require('node:crypto');
const { EventEmitter } = require('node:events');
const fs = require('node:fs');
const path = require('node:path');
const WebSocket = require('ws');
const { Server } = require('@signalapp/mock-server');
const { Connection } = require('@signalapp/mock-server/src/server/ws/connection');

const MOCK_DIR = path.dirname(require.resolve('@signalapp/mock-server/package.json'));
const CERTS = path.join(MOCK_DIR, 'certs');
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** What each bridge did, for the harness's report. */
const bridged = new Map();
function count(what) {
  bridged.set(what, (bridged.get(what) ?? 0) + 1);
}

/** Sealed sends refused so far, by target, while the harness rate-limits them. */
const sealedLimits = new Map();

/** Credentials Signal no longer accepts (`<aci>.<device id>`, or `<aci>.` for every device). */
const revoked = new Set();

/** True while the harness keeps every websocket from opening (a network outage). */
let refusingSockets = false;

/** Every challenge answer received (PUT /v1/challenge): {token, captcha}. */
const challengeAnswers = [];

/** Every PUT /v1/accounts/attributes body (no secrets in it: the client sends no PIN). */
const accountAttributes = [];

/**
 * The digest Signal-Server's KeysController.checkKeys compares (and libsignal-service's
 * AccountManager::check_pre_keys computes): SHA-256 of the identity key, the signed
 * pre-key id (8 bytes, big endian) and key, the last-resort Kyber key id and key.
 */
function keysDigest(keys) {
  const hash = crypto.createHash('sha256');
  const id = (n) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(n));
    return b;
  };
  hash.update(Buffer.from(keys.identityKey.serialize()));
  hash.update(id(keys.signedPreKey.keyId));
  hash.update(Buffer.from(keys.signedPreKey.publicKey.serialize()));
  hash.update(id(keys.lastResortKey.keyId));
  hash.update(Buffer.from(keys.lastResortKey.publicKey.serialize()));
  return hash.digest();
}

/** The mock's websocket connection, with the routes libsignal-service needs added. */
class BridgedConnection extends Connection {
  constructor(request, ws, server) {
    super(request, ws, server);
    // 2. libsignal-service keeps the provisioning socket alive on its own path.
    this.router.get('/v1/keepalive/provisioning', async () => {
      count('GET /v1/keepalive/provisioning (mock: /v1/keepalive only)');
      return [200, {}];
    });
    // 5a. presage sets the device's attributes on every connect.
    this.router.put('/v1/accounts/attributes', async (_params, body) => {
      count('PUT /v1/accounts/attributes (missing in the mock)');
      if (!this.device) {
        return [401, { error: 'Not authenticated' }];
      }
      try {
        accountAttributes.push(JSON.parse(Buffer.from(body ?? []).toString()));
      } catch {
        return [422, { error: 'Not JSON' }];
      }
      return [204, {}];
    });
    // 5b. Pre-keys are uploaded only when the server says its view is stale.
    this.router.post('/v2/keys/check', async (_params, body) => {
      count('POST /v2/keys/check (missing in the mock)');
      if (!this.device) {
        return [401, { error: 'Not authenticated' }];
      }
      const { identityType, digest } = JSON.parse(Buffer.from(body ?? []).toString());
      const kind = String(identityType).toUpperCase() === 'PNI' ? 'PNI' : 'ACI';
      const keys = this.device.keys?.get(kind);
      if (!keys?.identityKey || !keys.signedPreKey || !keys.lastResortKey) {
        return [409, {}];
      }
      const same = keysDigest(keys).equals(Buffer.from(String(digest), 'base64'));
      return same ? [200, {}] : [409, {}];
    });
    // 6. The send answer must carry needsSync (Signal-Server's SendMessageResponse).
    const send = this.router.routes.find(
      (r) => r.method === 'PUT' && r.pattern.match('/v1/messages/x') !== null,
    );
    const original = send.handler;
    send.handler = async (params, body, headers, query) => {
      // 7. server.rateLimit applies to identified sends only; Signal's server limits sealed
      //    sends too. The harness's limit, by target, covers both.
      const limited = sealedLimits.get(params.serviceId);
      if (!this.device && limited !== undefined) {
        count('sealed send refused with 428 (mock: rate-limits identified sends only)');
        sealedLimits.set(params.serviceId, limited + 1);
        return [428, { token: 'token', options: ['captcha'] }];
      }
      const result = await original(params, body, headers, query);
      if (result[0] === 200 && result[1] && !('needsSync' in result[1])) {
        count('PUT /v1/messages/:id answer without needsSync');
        let needsSync = false;
        if (this.device && params.serviceId !== this.device.aci) {
          const own = await this.server.getAllDevicesByServiceId(this.device.aci);
          needsSync = own.length > 1;
        }
        return [200, { ...result[1], needsSync }, result[2]];
      }
      return result;
    };
  }
}

/** A stand-in socket for running one ws-router request outside a websocket. */
class NoSocket extends EventEmitter {
  send() {}
  close() {}
}

/**
 * Starts the mock on 127.0.0.1 (a free port) with its own certs, and writes the
 * libsignal-service test configuration to `configPath`.
 *
 * `numbers` maps an account's E164 to its ACI (filled in by the harness as it creates
 * accounts): the link request authenticates with the number.
 */
async function startMock({ stateDir, configPath }) {
  const cdn3Path = path.join(stateDir, 'cdn3');
  const updates2Path = path.join(stateDir, 'updates2');
  fs.mkdirSync(cdn3Path, { recursive: true });
  fs.mkdirSync(updates2Path, { recursive: true });
  const server = new Server({ cdn3Path, updates2Path });
  await server.listen(0, '127.0.0.1');
  // 8. Unlinking a device or unregistering an account: the mock keeps accepting the old
  //    credentials; Signal-Server refuses them (401). The harness's revocations apply here.
  const auth = server.auth.bind(server);
  server.auth = async (username, password) => {
    const aci = String(username).split('.')[0];
    if (revoked.has(username) || revoked.has(`${aci}.`)) {
      count('credentials refused after an unlink or unregister (mock: still accepted)');
      return undefined;
    }
    return auth(username, password);
  };
  const https = server.https;
  // Every connection's peer address, in order: the Tor scenario (18) checks that each came
  // from the SOCKS server's outgoing address.
  const peers = [];
  https.on('connection', (socket) => peers.push({ address: socket.remoteAddress, at: Date.now() }));
  const numbers = new Map();
  const sockets = new Set();

  // 1. WebSockets: libsignal-service (reqwest-websocket, HTTP/1.1 only) sends an HTTP/1.1
  //    Upgrade; the mock serves websockets only as HTTP/2 extended CONNECT (RFC 8441).
  const wss = new WebSocket.WebSocketServer({ noServer: true });
  https.on('upgrade', (req, socket, head) => {
    if (refusingSockets) {
      // The harness keeps Signal out of reach (a network outage): no websocket opens.
      socket.destroy();
      return;
    }
    // 8 (continued). Refused credentials: Signal-Server answers the upgrade 401; the mock
    //    accepts it and closes the socket (code 3000) after.
    const basic = (req.headers.authorization ?? '').replace(/^Basic /, '');
    const user = Buffer.from(basic, 'base64').toString().split(':', 1)[0];
    if (user && (revoked.has(user) || revoked.has(`${user.split('.')[0]}.`))) {
      count('websocket upgrade refused 401 for refused credentials (mock: accepted, then closed)');
      socket.end('HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
      return;
    }
    count('websocket as HTTP/1.1 Upgrade (mock: HTTP/2 CONNECT only)');
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.add(ws);
      ws.once('close', () => sockets.delete(ws));
      const conn = new BridgedConnection(req, ws, server);
      conn.start(ws).catch((error) => {
        ws.close();
        console.error('mock websocket error:', error);
      });
    });
  });

  // 3 + 4. The link request: libsignal-service sends it over plain HTTPS, authenticated as
  //    the account's number; the mock serves it only inside a websocket and looks the
  //    provisioning code up by ACI.
  const handlers = https.listeners('request');
  https.removeAllListeners('request');
  https.on('request', (req, res) => {
    const url = new URL(req.url, 'https://127.0.0.1');
    // 9. The answer to a 428 challenge comes over HTTPS (the mock: websocket only); a solved
    //    challenge lifts the rate limit, as Signal-Server's does.
    if (req.method === 'PUT' && url.pathname === '/v1/challenge') {
      count('PUT /v1/challenge over HTTPS (mock: websocket only)');
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', async () => {
        const basic = (req.headers.authorization ?? '').replace(/^Basic /, '');
        const [user, password] = Buffer.from(basic, 'base64').toString().split(':', 2);
        const device = await server.auth(user, password);
        if (!device) {
          res.writeHead(401, { 'content-type': 'application/json' });
          res.end('{"error":"Not authorized"}');
          return;
        }
        let body = {};
        try {
          body = JSON.parse(Buffer.concat(chunks).toString());
        } catch {}
        challengeAnswers.push({ token: body.token, captcha: body.captcha });
        const response = server.getResponseForChallenges();
        const status = response ? response.code : 200;
        if (status === 200) {
          sealedLimits.clear();
          server.rateLimitCountByPair?.clear?.();
        }
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(response?.data ?? {}));
      });
      return;
    }
    if (req.method === 'PUT' && url.pathname === '/v1/devices/link') {
      count('PUT /v1/devices/link over HTTPS (mock: websocket only)');
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        linkOverHttp(server, numbers, req, Buffer.concat(chunks))
          .then(({ status, headers, body }) => {
            res.writeHead(status, headers);
            res.end(body);
          })
          .catch((error) => {
            res.writeHead(500, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ error: String(error) }));
          });
      });
      return;
    }
    for (const h of handlers) h.call(https, req, res);
  });

  const { port } = server.address();
  const url = `https://127.0.0.1:${port}`;
  const trustRoot = JSON.parse(fs.readFileSync(path.join(CERTS, 'trust-root.json'), 'utf8'));
  const zkParams = JSON.parse(fs.readFileSync(path.join(CERTS, 'zk-params.json'), 'utf8'));
  fs.writeFileSync(
    configPath,
    JSON.stringify({
      service_url: url,
      storage_url: url,
      cdn_urls: { 0: url, 2: url, 3: `${url}/cdn3` },
      certificate_authority: fs.readFileSync(path.join(CERTS, 'ca-cert.pem'), 'utf8'),
      unidentified_sender_trust_roots: [trustRoot.publicKey],
      zkgroup_server_public_params: zkParams.publicParams,
    }),
  );
  return {
    server,
    url,
    numbers,
    peers,
    bridged,
    accountAttributes,
    /**
     * Re-registers `primary`'s account as Signal does when a phone is reinstalled: the same
     * ACI, PNI and number, a new identity key and registration id, and no linked devices.
     * The mock has no API for it; this replaces the account's device records.
     */
    async reregister(primary, profileName) {
      const { aci, pni, number } = primary.device;
      for (const username of [...server.devicesByAuth.keys()]) {
        if (username.startsWith(`${aci}.`)) server.devicesByAuth.delete(username);
      }
      server.devices.delete(aci);
      server.primaryByServiceId.delete(aci);
      if (pni) server.primaryByServiceId.delete(pni);
      server.primaryDevices.delete(aci);
      server.generateAci = async () => aci;
      server.generatePni = async () => pni;
      server.generateNumber = async () => number;
      try {
        return await server.createPrimaryDevice({ profileName });
      } finally {
        delete server.generateAci;
        delete server.generatePni;
        delete server.generateNumber;
      }
    },
    /** Refuses every send to `target` with 428, identified (the mock's own) or sealed. */
    rateLimit({ source, target }) {
      server.rateLimit({ source, target });
      sealedLimits.set(target, 0);
    },
    /** Lifts it; returns how many sends were refused. */
    stopRateLimiting({ source, target }) {
      const identified = server.stopRateLimiting({ source, target }) ?? 0;
      const sealed = sealedLimits.get(target) ?? 0;
      sealedLimits.delete(target);
      return identified + sealed;
    },
    /** Refuses `username`'s credentials from now on (`<aci>.` refuses every device). */
    revoke(username) {
      revoked.add(username);
      for (const ws of sockets) ws.terminate();
    },
    /** Accepts them again. */
    unrevoke(username) {
      revoked.delete(username);
    },
    /** Signal out of reach (`true`: every websocket closed and none opens) or back. */
    outage(on) {
      refusingSockets = on;
      if (on) for (const ws of sockets) ws.terminate();
    },
    /** The challenge answers received so far. */
    challengeAnswers() {
      return challengeAnswers.slice();
    },
    /** Closes every websocket from the server side (a dropped connection). */
    dropWebsockets() {
      for (const ws of sockets) ws.terminate();
    },
    async close() {
      for (const ws of sockets) ws.terminate();
      await server.close();
    },
  };
}

async function linkOverHttp(server, numbers, req, body) {
  const auth = req.headers.authorization ?? '';
  const [user, password] = Buffer.from(auth.replace(/^Basic /, ''), 'base64')
    .toString()
    .split(':', 2);
  let username = user;
  if (!UUID.test(username ?? '')) {
    count('link authenticated as the E164 (mock: by ACI)');
    username = numbers.get(username);
    if (!username) {
      return { status: 403, headers: {}, body: '{"error":"unknown number"}' };
    }
  }
  const conn = new BridgedConnection({ url: '/', headers: {} }, new NoSocket(), server);
  const basic = Buffer.from(`${username}:${password}`).toString('base64');
  const out = await conn.router.run({
    verb: 'PUT',
    path: '/v1/devices/link',
    headers: [`authorization:Basic ${basic}`, 'content-type:application/json'],
    body,
    id: 0n,
  });
  const headers = {};
  for (const h of out.headers ?? []) {
    const i = h.indexOf(':');
    headers[h.slice(0, i).toLowerCase()] = h.slice(i + 1);
  }
  return { status: out.status, headers, body: out.body };
}

module.exports = { startMock };
