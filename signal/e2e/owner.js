// A mock account's primary device as the harness drives it (the owner's phone, or a
// stranger's): sends text, and reads what reaches it with the envelope it came in.
'use strict';

const { AsyncLocalStorage } = require('node:async_hooks');
const { EMPTY_DATA_MESSAGE } = require('@signalapp/mock-server/src/api/primary-device');

class Owner {
  constructor(primary) {
    this.primary = primary;
    this.aci = primary.device.aci;
    this.sessions = new Set();
    /** How each message reached this device (the server's envelope), by its timestamp. */
    this.envelopes = new Map();
    // The server hands each envelope to handleEnvelope with its type (SealedSender when the
    // sender used sealed sender, and then no source); the data message inside is found
    // later, under the same async context.
    const outer = new AsyncLocalStorage();
    const handleEnvelope = primary.handleEnvelope.bind(primary);
    primary.handleEnvelope = (source, kind, envelopeType, encrypted) =>
      outer.run({ envelopeType, source: source ? 'visible' : 'hidden' }, () =>
        handleEnvelope(source, kind, envelopeType, encrypted),
      );
    const handleDataMessage = primary.handleDataMessage.bind(primary);
    primary.handleDataMessage = (...args) => {
      const env = outer.getStore();
      const dataMessage = args[4];
      if (env && dataMessage) {
        this.envelopes.set(String(dataMessage.timestamp), {
          sealed: env.envelopeType === 'SealedSender',
          type: env.envelopeType,
          source: env.source,
        });
      }
      return handleDataMessage(...args);
    };
  }

  /** A pre-key of `device`, once, so the first message can open a session. */
  async session(device) {
    const key = `${device.aci}.${device.deviceId}`;
    if (this.sessions.has(key)) return;
    await this.primary.addSingleUseKey(device, await device.popSingleUseKey());
    this.sessions.add(key);
  }

  /** Sends `text` to `device`, with the owner's profile key (as Signal's apps do). */
  async send(device, text, options = {}) {
    await this.session(device);
    const timestamp = options.timestamp ?? Date.now();
    await this.primary.sendText(device, text, { withProfileKey: true, timestamp, ...options });
    return timestamp;
  }

  /**
   * Sends a data message built from `fields` (a reaction, a long text, a timer...), with
   * the owner's profile key; returns its timestamp.
   */
  async sendData(device, fields, options = {}) {
    await this.session(device);
    const timestamp = options.timestamp ?? Date.now();
    const dataMessage = {
      ...EMPTY_DATA_MESSAGE,
      profileKey: this.primary.profileKey.serialize(),
      ...fields,
      timestamp: BigInt(timestamp),
    };
    const content = {
      content: { dataMessage },
      pniSignatureMessage: null,
      senderKeyDistributionMessage: null,
    };
    await this.primary.sendRaw(device, content, { timestamp, ...options });
    return timestamp;
  }

  /** Reacts with `emoji` to the message `author` sent at `target`. */
  async react(device, { emoji, author, target, remove = false }) {
    return this.sendData(device, {
      reaction: {
        emoji,
        remove,
        targetAuthorAci: author,
        targetAuthorAciBinary: null,
        targetSentTimestamp: BigInt(target),
      },
    });
  }

  /** Reads the device's message queue into `inbox` (a timed-out wait loses nothing). */
  pump() {
    if (this.inbox) return;
    this.inbox = [];
    this.waiters = [];
    this.seen = new Set();
    const loop = async () => {
      for (;;) {
        const m = await this.primary.waitForMessage();
        const ts = String(m.dataMessage.timestamp);
        // The same sender and timestamp again is the same message: Signal's clients show it
        // once. Kept, marked, so the scenarios can tell a retry from a second message.
        const key = `${m.source.aci}.${ts}`;
        const repeat = this.seen.has(key);
        this.seen.add(key);
        this.inbox.push({ ...m, timestamp: Number(ts), envelope: this.envelopes.get(ts), repeat });
        for (const w of this.waiters.splice(0)) w();
      }
    };
    loop().catch((e) => console.error('owner queue:', e));
  }

  /** The next message that reaches this device, with `sealed` from its envelope. */
  async next(ms = 30000, what = 'a message to the owner') {
    this.pump();
    const deadline = Date.now() + ms;
    while (this.inbox.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${what}: nothing within ${ms / 1000} s`);
      await new Promise((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return this.inbox.shift();
  }

  /** Every message that arrives within `ms`. */
  async drain(ms) {
    const out = [];
    const deadline = Date.now() + ms;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) return out;
      try {
        out.push(await this.next(left));
      } catch {
        return out;
      }
    }
  }
}

module.exports = { Owner };
