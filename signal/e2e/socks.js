// A SOCKS5 server on loopback standing in for Tor's SocksPort (RFC 1928, with RFC 1929
// user name/password authentication, which Tor's IsolateSOCKSAuth reads): it resolves names
// from its own table only, opens every outgoing connection from `bindAddress` (127.0.0.2,
// an address nothing else on the machine uses), and keeps each CONNECT it was asked for.
// `stop()` makes it unreachable (the listener closed, every tunnel cut), `start()` brings it
// back on the same port.
'use strict';

const net = require('node:net');

class Socks {
  constructor({ names, bindAddress = '127.0.0.2' }) {
    this.names = names;
    this.bindAddress = bindAddress;
    /** Every CONNECT: {user, password, host, atyp: 'domain'|'ipv4'|'ipv6', port, ok, at}. */
    this.connects = [];
    this.port = 0;
    this.server = undefined;
    this.open = new Set();
  }

  /** Listens on 127.0.0.1 (the port of an earlier start, or a free one). */
  start() {
    this.server = net.createServer((client) => this.serve(client));
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, '127.0.0.1', () => {
        this.port = this.server.address().port;
        resolve(this);
      });
    });
  }

  /** Unreachable from now on: no new connection, and every tunnel cut. */
  stop() {
    const closed = new Promise((r) => this.server.close(() => r()));
    for (const s of this.open) s.destroy();
    this.open.clear();
    return closed;
  }

  get url() {
    return `socks5h://127.0.0.1:${this.port}`;
  }

  serve(client) {
    this.open.add(client);
    client.once('close', () => this.open.delete(client));
    client.on('error', () => {});
    let buf = Buffer.alloc(0);
    let stage = 'greeting';
    let user;
    let password;
    const need = (n) => buf.length >= n;
    const take = (n) => {
      const out = buf.subarray(0, n);
      buf = buf.subarray(n);
      return out;
    };
    const onData = (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        if (stage === 'greeting') {
          if (!need(2) || !need(2 + buf[1])) return;
          const [ver, n] = take(2);
          const methods = [...take(n)];
          if (ver !== 5) return client.destroy();
          const method = methods.includes(2) ? 2 : methods.includes(0) ? 0 : 0xff;
          client.write(Buffer.from([5, method]));
          if (method === 0xff) return client.end();
          stage = method === 2 ? 'auth' : 'request';
        } else if (stage === 'auth') {
          if (!need(2) || !need(2 + buf[1] + 1)) return;
          const ulen = buf[1];
          const plen = buf[2 + ulen];
          if (!need(3 + ulen + plen)) return;
          take(2);
          user = take(ulen).toString();
          take(1);
          password = take(plen).toString();
          client.write(Buffer.from([1, 0]));
          stage = 'request';
        } else if (stage === 'request') {
          if (!need(5)) return;
          const atyp = buf[3];
          const len = atyp === 1 ? 4 : atyp === 4 ? 16 : atyp === 3 ? 1 + buf[4] : -1;
          if (len < 0) return client.destroy();
          if (!need(4 + len + 2)) return;
          const head = take(4);
          const raw = take(len);
          const port = take(2).readUInt16BE(0);
          let host;
          let kind;
          if (atyp === 1) [host, kind] = [[...raw].join('.'), 'ipv4'];
          else if (atyp === 4) [host, kind] = [raw.toString('hex').match(/.{4}/g).join(':'), 'ipv6'];
          else [host, kind] = [raw.subarray(1).toString(), 'domain'];
          stage = 'tunnel';
          client.removeListener('data', onData);
          this.connect(client, head[1], { user, password, host, atyp: kind, port }, buf);
          return;
        }
      }
    };
    client.on('data', onData);
  }

  connect(client, cmd, asked, rest) {
    const record = { ...asked, ok: false, at: Date.now() };
    this.connects.push(record);
    const reply = (code) => Buffer.from([5, code, 0, 1, 0, 0, 0, 0, 0, 0]);
    if (cmd !== 1) return client.end(reply(7));
    const address = asked.atyp === 'domain' ? this.names[asked.host] : asked.host;
    if (!address) return client.end(reply(4));
    const upstream = net.connect({ host: address, port: asked.port, localAddress: this.bindAddress });
    this.open.add(upstream);
    upstream.once('close', () => {
      this.open.delete(upstream);
      client.destroy();
    });
    upstream.on('error', () => (record.ok ? client.destroy() : client.end(reply(5))));
    client.once('close', () => upstream.destroy());
    upstream.once('connect', () => {
      record.ok = true;
      client.write(reply(0));
      if (rest.length) upstream.write(rest);
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }
}

module.exports = { Socks };
