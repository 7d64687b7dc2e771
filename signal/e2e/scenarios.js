// The scenarios of the issue "Signal end to end", in order. Each `run(ctx)` throws on a
// failure and returns a short note of what it observed.
'use strict';

const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { encryptAttachment } = require('@signalapp/mock-server/src/crypto');
const { attachmentToPointer } = require('@signalapp/mock-server/src/data/attachment');
const { Owner } = require('./owner');
const { PASSPHRASE, sleep, within, until } = require('./procs');

/** An approval code: 10 of 31 letters and digits (no 0/O/1/I/L), dash optional. */
const CODE = /\b([A-HJKMNP-Z2-9]{5})-?([A-HJKMNP-Z2-9]{5})\b/;

function lastLine(text) {
  return text.trim().split('\n').pop() ?? '';
}

function assert(cond, what) {
  if (!cond) throw new Error(what);
}

/** True when `body` answers `list` on an agent with no contexts (JSON or words). */
function isEmptyList(body) {
  try {
    return JSON.parse(body).count === 0;
  } catch {
    // The reply in words (the core's Signal replies are text for people).
    return /\b(no|0|zero)\s+contexts?\b/i.test(body) || /\bcontexts?\b[^\n]*\b0\b/i.test(body);
  }
}

/** Lines of the gateway's log that mention `text`, after `from` bytes. */
function gatewaySaw(ctx, text, from = 0) {
  return ctx.gateway
    .logs()
    .slice(from)
    .split('\n')
    .filter((l) => l.includes(text));
}

const link = {
  n: 1,
  name: 'Link',
  timeout: 180000,
  async run(ctx) {
    const { mock, agentAccount, gateway } = ctx;
    const provision = mock.server.waitForProvision();
    let completed;
    const linked = gateway.link(['--device-name', 'pane-e2e'], (url) => {
      completed = provision.then((p) => p.complete({ provisionURL: url, primaryDevice: agentAccount }));
      completed.catch(() => {});
    });
    const r = await within(90000, 'pane-signal link', linked);
    assert(r.code === 0, `link exited ${r.code}: ${lastLine(r.stderr)}`);
    const m = r.stdout.match(/Linked: account (\S+) \(ACI\), device (\d+)/);
    assert(m, `link printed no ACI and device: ${lastLine(r.stdout)}`);
    assert(m[1] === agentAccount.device.aci, `link printed ACI ${m[1]}, the account is ${agentAccount.device.aci}`);
    assert(Number(m[2]) > 1, `link printed device ${m[2]} (a linked device is never 1)`);
    // The mock completes provisioning once the device has uploaded its pre-keys: `run` does.
    gateway.start();
    ctx.linked = await within(90000, 'provisioning completed (pre-keys uploaded by run)', completed);
    assert(ctx.linked.deviceId === Number(m[2]), 'the mock linked another device id');
    // Sealed: link takes the key from the core, which serves one gateway at a time (a
    // second one is refused, and the owner alerted): the running gateway steps aside.
    if (gateway.sealed) await gateway.stop();
    const again = await within(30000, 'a second link', gateway.link([], undefined));
    if (gateway.sealed) gateway.start();
    assert(again.code !== 0, 'a second link without --force succeeded');
    assert(/already holds a linked device/.test(again.stderr), `second link: ${lastLine(again.stderr)}`);
    return `ACI ${m[1]} device ${m[2]}; second link refused: "${lastLine(again.stderr).slice(0, 60)}..."`;
  },
};

const ownerCommand = {
  n: 2,
  name: 'Owner command, reply decrypts, sealed sender',
  async run(ctx) {
    const { owner, core, agentAccount, linked } = ctx;
    await owner.send(linked, core.sign('list'));
    const first = await owner.next(60000, 'the reply to list');
    assert(first.source.aci === agentAccount.device.aci, `reply from ${first.source.aci}`);
    assert(isEmptyList(first.body), `reply is not an empty list: ${first.body.slice(0, 80)}`);
    // The agent now has the owner's profile key (it came with the message): sealed sender
    // both ways from here. The owner's side is sealed by the mock device; the gateway logs
    // how each message arrived.
    const logFrom = ctx.gateway.logs().length;
    await owner.send(linked, core.sign('list'), { sealed: true });
    const second = await owner.next(60000, 'the reply to the second list');
    assert(isEmptyList(second.body), `second reply: ${second.body.slice(0, 80)}`);
    assert(second.envelope?.sealed, `the second reply came as envelope type ${second.envelope?.type}`);
    const inbound = gatewaySaw(ctx, 'message received', logFrom);
    assert(inbound.some((l) => l.includes('sealed=true')), 'the gateway did not see the owner\'s sealed message');
    const how = (m) => `${m.envelope?.type}, source ${m.envelope?.source}`;
    return (
      `reply 1 envelope ${how(first)}; reply 2 envelope ${how(second)}; ` +
      "the owner's sealed message logged sealed=true by the gateway"
    );
  },
};

const stranger = {
  n: 4,
  name: 'Stranger with a valid envelope: no reply, no action',
  async run(ctx) {
    const { mock, core, linked } = ctx;
    const s = new Owner(await mock.server.createPrimaryDevice({ profileName: 'Stranger' }));
    const before = JSON.stringify(core.send('help').commands);
    const logFrom = ctx.gateway.logs().length;
    await s.send(linked, core.sign('lockdown'));
    await until(30000, "the gateway relays the stranger's message", () =>
      gatewaySaw(ctx, `sender=${s.aci}`, logFrom).length > 0,
    );
    const got = await s.drain(8000); // any message at all, repeat or not, is a failure
    assert(got.length === 0, `the stranger got ${got.length} message(s): ${got[0]?.body.slice(0, 60)}`);
    const after = JSON.stringify(core.send('help').commands);
    assert(after === before, 'lockdown took effect: the grants changed');
    // The core read it and dropped it: it acknowledged the line (the journal is empty). (It
    // audits strangers as a count once a minute.)
    await until(15000, "the core acknowledges the stranger's message", () => journal(ctx).length === 0);
    return 'relayed (gateway log), acknowledged and dropped by the core, nothing sent back in 8 s, grants unchanged';
  },
};

/** Whether `tool` is granted now (from `help` over the control socket). */
function granted(core, tool) {
  const help = core.send('help');
  if (!help.commands) throw new Error(`help: ${JSON.stringify(help).slice(0, 120)}`);
  const entry = help.commands.find((c) => [c.name, c.cmd, c.command, c.tool].includes(tool));
  if (!entry) throw new Error(`help does not list ${tool}`);
  return entry.granted === true;
}

/** Messages to `who` until one matches `pred`, then whatever follows within `settle` ms. */
async function until_message(who, pred, ms, what, settle = 3000) {
  const got = [];
  const deadline = Date.now() + ms;
  while (!got.some(pred)) {
    got.push(await who.next(Math.max(1, deadline - Date.now()), what));
  }
  return got.concat(await who.drain(settle));
}

/** The gateway's journal of unacknowledged messages (sealed entries; `.json` is an
 * entry in clear, from before the journal was sealed). */
function journal(ctx) {
  const dir = path.join(ctx.core.dir, 'signal', 'inbox');
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => /\.(sealed|json)$/.test(f)) : [];
}

/** Text of the harness's envelopes and replies, and the owner's ACI: none of it may be
 * readable in the gateway's files, in clear, hex or base64. */
function clearTextIn(ctx, files) {
  const needles = ['"cmd"', '"sig"', '"count"', 'approve ', ctx.owner.aci];
  const spelled = [];
  for (const n of needles) {
    const b = Buffer.from(n);
    spelled.push([n, n], [n, b.toString('hex')]);
    for (let skip = 0; skip < 3; skip++) {
      const part = b.subarray(skip, skip + Math.floor((b.length - skip) / 3) * 3);
      if (part.length >= 3) spelled.push([n, part.toString('base64')]);
    }
  }
  const found = [];
  for (const f of files) {
    const text = fs.readFileSync(f).toString('latin1');
    for (const [n, s] of spelled) if (text.includes(s)) found.push(`${path.basename(f)}: ${n}`);
  }
  return found;
}

/** Every file the gateway wrote beside its presage store. */
function besideTheStore(ctx) {
  const out = [];
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (!e.name.startsWith('presage.db3')) out.push(p);
    }
  };
  walk(path.join(ctx.core.dir, 'signal'));
  return out;
}

/** Each send attempt the gateway logged for one outbox id: {id: [timestamps]}. */
function sendAttempts(ctx, from = 0) {
  const out = {};
  for (const l of gatewaySaw(ctx, 'sending', from)) {
    const id = l.match(/\bid="?([\w.]+)/)?.[1];
    const ts = l.match(/\btimestamp=(\d+)/)?.[1];
    if (id && ts) (out[id] ??= []).push(Number(ts));
  }
  return out;
}

/** True when no two of `msgs` are different messages with the same text (a resend with a
 * new timestamp: the duplicate a phone would show). Repeats of one timestamp are one
 * message to a client, and are counted in `ctx.notes`. */
function onceEach(msgs) {
  const fresh = msgs.filter((m) => !m.repeat);
  return new Set(fresh.map((m) => m.body)).size === fresh.length;
}

/** The messages that are not repeats of one already seen, noting the repeats. */
function fresh(ctx, msgs, where) {
  const repeats = msgs.filter((m) => m.repeat);
  if (repeats.length) {
    ctx.notes.push(`${where}: ${repeats.length} delivery(ies) repeating an earlier message's timestamp (one message to a client)`);
  }
  return msgs.filter((m) => !m.repeat);
}

const approvals = {
  n: 3,
  name: 'Approval over Signal: approve CODE, then a 👍 reaction',
  async run(ctx) {
    const { owner, core, linked, agentAccount } = ctx;
    core.send('revoke', ['tool=status']);
    assert(!granted(core, 'status'), 'revoke did not take');
    await owner.send(linked, core.sign('grant', ['tool=status']));
    const first = await until_message(owner, (m) => CODE.test(m.body), 60000, 'the approval prompt');
    const code = first.find((m) => CODE.test(m.body)).body.match(CODE);
    await owner.send(linked, `approve ${code[1]}-${code[2]}`);
    await until(30000, 'approve CODE settles it', () => granted(core, 'status'));
    const result = await owner.next(30000, 'the approval result');
    // A second prompt, answered with 👍 on the message that carried it.
    core.send('revoke', ['tool=status']);
    await owner.send(linked, core.sign('grant', ['tool=status']));
    const second = await until_message(owner, (m) => CODE.test(m.body), 60000, 'the second prompt');
    const prompts = second.filter((m) => CODE.test(m.body));
    const prompt = prompts.find((m) => m.body.includes('👍')) ?? prompts[prompts.length - 1];
    await owner.react(linked, { emoji: '👍', author: agentAccount.device.aci, target: prompt.timestamp });
    await until(30000, 'a 👍 on the prompt settles it', () => granted(core, 'status'));
    return `code ${code[1]}-… approved ("${result.body.slice(0, 40)}…"); 👍 on the prompt approved the second`;
  },
};

const identity = {
  n: 5,
  name: "Owner's identity changes: nothing sent until trust, then once",
  timeout: 180000,
  async run(ctx) {
    // Whatever happens here, the scenarios after it need commands to work again.
    let trusted = false;
    try {
      return await changeIdentity(ctx, () => {
        trusted = true;
      });
    } finally {
      if (!trusted) ctx.core.cli(['trust']);
    }
  },
};

/** Scenario 5 itself; `markTrusted` is called just before `pane-agent trust`. */
async function changeIdentity(ctx, markTrusted) {
  const { mock, core, linked } = ctx;
  const old = ctx.owner;
  const renewed = new Owner(await mock.reregister(old.primary, 'Owner'));
  assert(renewed.aci === old.aci, 're-registration changed the ACI');
  ctx.owner = renewed;
  const logFrom = ctx.gateway.logs().length;
  await renewed.send(linked, core.sign('list'));
  await until(30000, 'the gateway reports the new safety number', () =>
    gatewaySaw(ctx, 'safety number changed', logFrom).length > 0,
  );
  // An alert for the owner while blocked: an approval prompt from the console.
  core.send('revoke', ['tool=check-incidents']);
  core.send('grant', ['tool=check-incidents']);
  const during = await renewed.drain(12000);
  assert(during.length === 0, `sent to the new key before trust: "${during[0]?.body.slice(0, 60)}"`);
  const audit = JSON.stringify(core.send('audit', ['limit:=50']));
  assert(audit.includes('signal.identity_changed'), 'the core did not record the change');
  markTrusted();
  core.cli(['trust']);
  const after = await renewed.drain(25000);
  assert(after.length > 0, 'nothing arrived after trust');
  assert(onceEach(after), 'a message arrived twice after trust');
  assert(after.some((m) => CODE.test(m.body)), 'the prompt queued while blocked did not arrive');
  return `nothing for 12 s before trust; ${after.length} message(s) after trust, each once`;
}

const longText = {
  n: 6,
  name: 'Long text (attachment) relayed whole',
  async run(ctx) {
    const { mock, owner, core, linked } = ctx;
    // A valid envelope padded with JSON whitespace past Signal's 2,000-byte inline body:
    // the inline part alone is not JSON, so only the whole text gets the list answer.
    const env = core.sign('list');
    const text = `{${' '.repeat(3000)}${env.slice(1)}`;
    const enc = encryptAttachment(Buffer.from(text));
    const key = await mock.server.storeAttachment(enc.blob);
    const pointer = { ...attachmentToPointer(key, enc), contentType: 'text/x-signal-plain' };
    await owner.sendData(linked, { body: text.slice(0, 2000), attachments: [pointer] });
    const r = await owner.next(60000, 'the reply to the long list');
    assert(isEmptyList(r.body), `the long text was not read whole: ${r.body.slice(0, 80)}`);
    return `${Buffer.byteLength(text)}-byte text (2,000 inline), answered as a whole envelope`;
  },
};

const websocketDrop = {
  n: 7,
  name: 'Websocket dropped by the server: reconnect, messages arrive once',
  async run(ctx) {
    const { mock, owner, core, linked } = ctx;
    const logFrom = ctx.gateway.logs().length;
    mock.dropWebsockets();
    await owner.send(linked, core.sign('list'));
    const r = await owner.next(90000, 'the reply after the reconnect');
    assert(isEmptyList(r.body), `reply: ${r.body.slice(0, 80)}`);
    const extra = fresh(ctx, await owner.drain(6000), 'scenario 7');
    assert(extra.length === 0, `${extra.length} extra message(s) after the reconnect: "${extra[0]?.body.slice(0, 50)}"`);
    const lost = gatewaySaw(ctx, 'Signal connection lost', logFrom).length;
    assert(lost > 0, 'the gateway never noticed the drop');
    return `drop noticed (${lost} log line(s)), reconnected, the reply arrived once`;
  },
};

const gatewayKill = {
  n: 8,
  name: 'Gateway SIGKILLed with unacked messages: each reaches the core once',
  timeout: 180000,
  async run(ctx) {
    const { owner, core, gateway, linked } = ctx;
    // Sealed, a stopped core seals the gateway too (nothing is received then): killed, it
    // does not, and the gateway keeps receiving and journaling.
    if (core.sealed) await core.kill();
    else await core.stop();
    await owner.send(linked, core.sign('list'));
    await owner.send(linked, core.sign('help'));
    await until(30000, 'both messages journaled', () => journal(ctx).length >= 2);
    const inClear = clearTextIn(ctx, besideTheStore(ctx));
    assert(inClear.length === 0, `in clear beside the store: ${inClear.join(', ')}`);
    await gateway.kill();
    const logFrom = gateway.logs().length;
    gateway.start();
    await core.start();
    const replies = fresh(ctx, await owner.drain(30000), 'scenario 8');
    assert(replies.length === 2, `${replies.length} replies (want 2: one each)`);
    assert(onceEach(replies), 'a reply arrived twice');
    await until(20000, 'the journal emptied by the acks', () => journal(ctx).length === 0);
    const attempts = sendAttempts(ctx, logFrom);
    for (const [id, ts] of Object.entries(attempts)) {
      assert(new Set(ts).size === 1, `send ${id} went out with timestamps ${ts.join(', ')}`);
    }
    return '2 journaled (sealed: no envelope text or ACI in clear, hex or base64) while the core was down, relayed after the restart, 2 replies, journal empty';
  },
};

const timer = {
  n: 9,
  name: "Disappearing timer: the agent's replies carry the owner's",
  async run(ctx) {
    const { owner, core, linked } = ctx;
    await owner.sendData(linked, { body: core.sign('list'), expireTimer: 3600, expireTimerVersion: 2 });
    const reply = await owner.next(60000, 'the reply');
    assert(reply.dataMessage.expireTimer === 3600, `reply timer ${reply.dataMessage.expireTimer}`);
    // An alert too: a prompt made at the console.
    core.send('revoke', ['tool=transactions']);
    core.send('grant', ['tool=transactions']);
    const prompt = await owner.next(30000, 'the prompt');
    assert(prompt.dataMessage.expireTimer === 3600, `prompt timer ${prompt.dataMessage.expireTimer}`);
    // Off again, for the scenarios after this one.
    await owner.sendData(linked, { body: core.sign('list'), expireTimer: 0, expireTimerVersion: 3 });
    const off = await owner.next(60000, 'the reply with the timer off');
    assert(!off.dataMessage.expireTimer, `the reply after the owner turned the timer off carried expireTimer ${off.dataMessage.expireTimer}`);
    return 'reply and prompt carried expireTimer 3600, the reply after the timer was turned off none';
  },
};

const retention = {
  n: 10,
  name: 'Retention: the presage store holds no message bodies',
  async run(ctx) {
    const { gateway, core } = ctx;
    await gateway.stop();
    const db = path.join(ctx.core.dir, 'signal', 'presage.db3');
    const python = process.env.PANE_E2E_PYTHON || 'python3';
    // Sealed: the passphrase lives in the core's sealed store; ask the core as a gateway does.
    const passphrase = core.sealed ? await core.storeKey() : PASSPHRASE;
    const out = execFileSync(python, [path.join(__dirname, 'inspect_store.py'), db], {
      env: { ...process.env, PANE_SIGNAL_PASSPHRASE: passphrase },
    }).toString();
    const inClear = clearTextIn(ctx, besideTheStore(ctx));
    gateway.start();
    const report = JSON.parse(out);
    ctx.notes.push(`store tables (rows): ${JSON.stringify(report.tables)}`);
    assert(report.tables.thread_messages === 0, `${report.tables.thread_messages} messages kept`);
    assert(report.plaintext.length === 0, `plaintext in the files: ${report.plaintext.join(', ')}`);
    assert(journal(ctx).length === 0, `${journal(ctx).length} messages still journaled`);
    assert(inClear.length === 0, `in clear beside the store: ${inClear.join(', ')}`);
    return `thread_messages 0, threads ${report.tables.threads}, no "cmd" text in the files, journal empty, nothing in clear beside the store`;
  },
};

const rateLimit = {
  n: 11,
  name: 'Rate limit (428 challenge) from the server: the send waits, retries, arrives once',
  timeout: 180000,
  async run(ctx) {
    const { mock, owner, core, linked, agentAccount } = ctx;
    // The gateway may need a moment after the restart in scenario 10.
    await until(60000, 'the gateway back', () => gatewaySaw(ctx, 'connected to the core').length > 0);
    const pair = { source: agentAccount.device.aci, target: owner.aci };
    const logFrom = ctx.gateway.logs().length;
    mock.rateLimit(pair);
    await owner.send(linked, core.sign('list'));
    const early = await owner.drain(20000);
    const refused = mock.stopRateLimiting(pair);
    const later = await owner.drain(30000);
    const all = fresh(ctx, early.concat(later), 'scenario 11');
    assert(refused > 0, `no send was refused (${all.length} arrived)`);
    assert(early.length === 0, 'a reply arrived while rate-limited');
    // The reply once; beside it, at most the agent's one notice that Signal works again (the
    // 428 made the link unusable while it lasted).
    const replies = all.filter((m) => isEmptyList(m.body));
    const notices = all.filter((m) => /works again/i.test(m.body));
    assert(replies.length === 1, `${replies.length} replies after the limit was lifted (want 1)`);
    assert(notices.length <= 1 && all.length === replies.length + notices.length, `${all.length} messages: ${all.map((m) => m.body.slice(0, 40)).join(' | ')}`);
    const attempts = sendAttempts(ctx, logFrom);
    for (const [id, ts] of Object.entries(attempts)) {
      assert(new Set(ts).size === 1, `send ${id} retried with timestamps ${ts.join(', ')}`);
    }
    return `${refused} attempt(s) refused with 428, the reply arrived once after, same timestamp (and ${notices.length} "works again" notice)`;
  },
};


const blockedTimer = {
  n: 12,
  name: "a blocked identity's timer does not reach the held replies",
  timeout: 180000,
  async run(ctx) {
    const { mock, core, linked } = ctx;
    const old = ctx.owner;
    const renewed = new Owner(await mock.reregister(old.primary, 'Owner'));
    ctx.owner = renewed;
    const logFrom = ctx.gateway.logs().length;
    // The new (unconfirmed) identity sets a 5 s timer, with a high version.
    await renewed.sendData(linked, { body: core.sign('list'), expireTimer: 5, expireTimerVersion: 1000 });
    await until(30000, 'the gateway reports the new safety number', () =>
      gatewaySaw(ctx, 'safety number changed', logFrom).length > 0,
    );
    core.send('revoke', ['tool=check-incidents']);
    core.send('grant', ['tool=check-incidents']);
    await sleep(5000);
    core.cli(['trust']);
    const after = await renewed.drain(20000);
    assert(after.length > 0, 'nothing arrived after trust');
    const timers = after.map((m) => m.dataMessage.expireTimer ?? 0);
    assert(timers.every((t) => t !== 5), `held replies carried the blocked identity's timer: ${timers.join(', ')}`);
    return `held replies' timers: ${timers.join(', ')}`;
  },
};

/** The presage store's files the gateway process holds open (Linux: /proc/PID/fd). */
function storeFilesOpen(gateway) {
  const dir = `/proc/${gateway.child.pid}/fd`;
  const out = [];
  for (const fd of fs.readdirSync(dir)) {
    try {
      const target = fs.readlinkSync(path.join(dir, fd));
      if (target.includes('presage.db3')) out.push(target);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

const sealUnseal = {
  n: 13,
  name: 'Sealed: the core stops, the gateway closes its store and waits; unsealed, it answers',
  sealedOnly: true,
  timeout: 180000,
  async run(ctx) {
    const { owner, core, gateway, linked } = ctx;
    const logFrom = gateway.logs().length;
    await core.stop();
    await until(20000, 'the gateway seals', () => gatewaySaw(ctx, 'the core sealed', logFrom).length > 0, 200);
    await until(20000, 'the gateway waits for the key', () =>
      gatewaySaw(ctx, 'waiting for the core to be unsealed', logFrom).length > 0, 200);
    // The store is closed: the process holds no file of it open.
    await until(10000, 'the gateway closes presage.db3', () => storeFilesOpen(gateway).length === 0, 200);
    // Sent while sealed: it waits on Signal's server, not in the gateway. (The mock's send
    // resolves only once the message reached the device: not awaited until the unseal.)
    const sent = owner.send(linked, core.sign('list'));
    sent.catch(() => {});
    const meanwhile = await owner.drain(5000);
    assert(meanwhile.length === 0, `${meanwhile.length} message(s) while sealed`);
    assert(journal(ctx).length === 0, `${journal(ctx).length} journaled while sealed (the store should be closed)`);
    assert(gateway.child.exitCode === null && gateway.child.signalCode === null, 'the gateway exited');
    await core.start();
    await within(60000, "the owner's message delivered after the unseal", sent);
    assert(storeFilesOpen(gateway).length > 0, 'the store is not open again after the unseal');
    // Only the replies to `list` count: what an earlier scenario left on its way (16's
    // "Signal works again", say) may arrive meanwhile.
    const after = fresh(ctx, await owner.drain(30000), 'scenario 13');
    const replies = after.filter((m) => isEmptyList(m.body));
    const others = after.filter((m) => !isEmptyList(m.body)).map((m) => `"${m.body.slice(0, 40)}"`);
    assert(replies.length === 1, `${replies.length} replies to list after the unseal (want 1); others: ${others.join(', ') || 'none'}`);
    if (others.length) ctx.notes.push(`scenario 13: also received ${others.join(', ')}`);
    await until(20000, 'the journal emptied by the ack', () => journal(ctx).length === 0);
    const opened = gatewaySaw(ctx, 'the core handed over the store key', logFrom).length;
    return `sealed on the core's stop (process kept, presage.db3 closed), nothing received while sealed, ${opened} key handover(s), the message sent meanwhile answered once after the unseal`;
  },
};


/** The agent's `health` over the control socket. */
function health(ctx) {
  return ctx.core.send('health');
}

/** GET /healthz: {status code, body}. */
async function healthz(ctx) {
  const r = await fetch(`http://127.0.0.1:${ctx.httpPort}/healthz`);
  return { code: r.status, body: await r.json().catch(() => ({})) };
}

/** Waits until `health` says `want` (a status, or a problem); returns it. */
async function healthSays(ctx, want, ms = 60000) {
  let last = {};
  await until(ms, `health: ${want}`, () => {
    last = health(ctx);
    return last.problem === want || (want === 'ok' && last.status === 'ok');
  }, 500).catch((e) => {
    throw new Error(`${e.message} (last: ${JSON.stringify(last).slice(0, 160)})`);
  });
  return last;
}

/** The fallback's messages after the `from`-th; none may hold the owner's or the agent's ids. */
function fallbackSince(ctx, from) {
  const got = ctx.fallback.bodies.slice(from);
  const ids = [ctx.owner.aci, ctx.agentAccount.device.aci, ctx.agentAccount.device.number, ctx.owner.number]
    .filter(Boolean)
    .map(String);
  for (const m of got) {
    for (const id of ids) assert(!m.body.includes(id), `the fallback was told ${id}: ${m.body}`);
  }
  return got;
}

/** One outage, judged from outside: health and /healthz say `problem` within a minute, the
 * fallback is told once, `cure` ends it, and health, /healthz and the fallback say so once. */
async function outage(ctx, problem, cause, cure) {
  const told = ctx.fallback.bodies.length;
  await cause();
  const h = await healthSays(ctx, problem);
  const down = await healthz(ctx);
  assert(down.code === 503 && down.body.status === 'degraded', `/healthz ${down.code} ${JSON.stringify(down.body)}`);
  await until(60000, 'the fallback told', () => ctx.fallback.bodies.length > told, 250);
  await sleep(3000);
  const during = fallbackSince(ctx, told);
  assert(during.length === 1, `${during.length} fallback message(s) for one outage (want 1)`);
  await cure();
  await healthSays(ctx, 'ok', 90000);
  const up = await healthz(ctx);
  assert(up.code === 200 && up.body.status === 'ok', `/healthz after: ${up.code} ${JSON.stringify(up.body)}`);
  await until(60000, 'the fallback told of the recovery', () => ctx.fallback.bodies.length > told + 1, 250);
  await sleep(3000);
  const all = fallbackSince(ctx, told);
  assert(all.length === 2, `${all.length} fallback message(s) (want 2: down, then up)`);
  return { health: h, down: all[0].body, up: all[1].body };
}

const signalOutage = {
  n: 14,
  name: 'Signal out of reach longer than the threshold: degraded, warned once, recovered once',
  timeout: 240000,
  async run(ctx) {
    const { mock, owner, core, linked } = ctx;
    const r = await outage(ctx, 'signal_disconnected', async () => mock.outage(true), async () => mock.outage(false));
    // The agent tells the owner the outage is over (one message), then answers as before.
    const early = await owner.drain(8000);
    await owner.send(linked, core.sign('list'));
    const got = await until_message(owner, (m) => isEmptyList(m.body), 60000, 'a reply after the outage');
    const told = fresh(ctx, early.concat(got), 'scenario 14').filter((m) => /works again/i.test(m.body));
    assert(told.length === 1, `${told.length} "works again" message(s) (want 1)`);
    return `fallback: "${r.down.slice(0, 50)}…", then "${r.up.slice(0, 40)}…"; the owner told once it works again; commands answered after`;
  },
};

const challenge = {
  n: 15,
  name: 'A 428 challenge: the owner learns what to do, answers it, the message is sent once',
  timeout: 240000,
  async run(ctx) {
    const { mock, owner, core, linked, agentAccount } = ctx;
    const pair = { source: agentAccount.device.aci, target: owner.aci };
    mock.rateLimit(pair);
    await owner.send(linked, core.sign('list'));
    const h = await healthSays(ctx, 'proof_required');
    assert(JSON.stringify(h).includes('captcha'), `health names no captcha: ${JSON.stringify(h).slice(0, 200)}`);
    const early = await owner.drain(3000);
    assert(early.length === 0, 'a message arrived while Signal wanted proof');
    const answered = core.send('signal.challenge', ['captcha=signal-hcaptcha.e2e.solved']);
    assert(!answered.error, `signal.challenge: ${JSON.stringify(answered)}`);
    await until(30000, 'the answer reached Signal', () => mock.challengeAnswers().length > 0, 250);
    const a = mock.challengeAnswers().pop();
    assert(a.token === 'token' && a.captcha === 'signal-hcaptcha.e2e.solved', `answer: ${JSON.stringify(a)}`);
    await healthSays(ctx, 'ok', 60000);
    const later = fresh(ctx, await owner.drain(45000), 'scenario 15');
    const replies = later.filter((m) => isEmptyList(m.body));
    assert(replies.length === 1, `${replies.length} replies to list after the challenge (want 1)`);
    mock.stopRateLimiting(pair);
    return `health said proof_required (${h.fix ?? 'no fix text'}), answered with signal.challenge, the reply arrived once`;
  },
};

const unregistered = {
  n: 16,
  name: "The account unregistered: degraded, warned once; registered again, recovered once",
  timeout: 240000,
  async run(ctx) {
    const { mock, agentAccount } = ctx;
    const aci = agentAccount.device.aci;
    const r = await outage(
      ctx,
      'unlinked',
      async () => {
        mock.server.unregister(agentAccount);
        mock.revoke(`${aci}.`);
      },
      async () => {
        mock.server.register(agentAccount);
        mock.unrevoke(`${aci}.`);
      },
    );
    return `credentials refused: health "${r.health.problem}", fallback "${r.down.slice(0, 50)}…", recovered without a relink`;
  },
};

/** The operator relinks: stops the gateway, runs `pane-signal link --replace`, starts it
 * again; resolves once the mock has provisioned the new device (now `ctx.linked`). */
async function relink(ctx, deviceName) {
  const { mock, gateway, agentAccount } = ctx;
  await gateway.stop();
  const provision = mock.server.waitForProvision();
  let completed;
  const linked = gateway.link(['--device-name', deviceName, '--replace'], (url) => {
    completed = provision.then((p) => p.complete({ provisionURL: url, primaryDevice: agentAccount }));
    completed.catch(() => {});
  });
  const r = await within(90000, 'pane-signal link --replace', linked);
  assert(r.code === 0, `link --replace exited ${r.code}: ${lastLine(r.stderr)}`);
  gateway.start();
  ctx.linked = await within(90000, 'the new device provisioned', completed);
}

const unlinkRelink = {
  n: 17,
  name: 'Unlinked from the phone: degraded and warned; relinked, the outbox arrives once each',
  timeout: 300000,
  async run(ctx) {
    const { mock, core, owner, gateway, agentAccount } = ctx;
    const told = ctx.fallback.bodies.length;
    const old = ctx.linked;
    await agentAccount.unlink(old);
    mock.revoke(`${agentAccount.device.aci}.${old.deviceId}`);
    const h = await healthSays(ctx, 'unlinked');
    const down = await healthz(ctx);
    assert(down.code === 503, `/healthz ${down.code}`);
    await until(60000, 'the fallback told', () => ctx.fallback.bodies.length > told, 250);
    // Meanwhile the agent has things to say: two approval prompts wait in its outbox.
    // (Tools no earlier scenario asked for: a grant already waiting is not asked again.)
    for (const tool of ['audit', 'sweep']) {
      core.send('revoke', [`tool=${tool}`]);
      const asked = core.send('grant', [`tool=${tool}`]);
      assert(asked.status === 'approval_required', `grant ${tool}: ${JSON.stringify(asked).slice(0, 200)}`);
    }
    assert(gateway.child.exitCode === null, 'the gateway exited on the unlink');
    await relink(ctx, 'pane-e2e-2');
    await healthSays(ctx, 'ok', 90000);
    const arrived = fresh(ctx, await owner.drain(30000), 'scenario 17');
    const prompts = arrived.filter((m) => CODE.test(m.body));
    assert(prompts.length === 2, `${prompts.length} prompts after the relink (want 2): ${arrived.map((m) => m.body.slice(0, 30)).join(' | ')}`);
    assert(onceEach(arrived), 'a message arrived twice');
    await until(60000, 'the fallback told of the recovery', () => ctx.fallback.bodies.length >= told + 2, 250);
    const all = fallbackSince(ctx, told);
    assert(all.length === 2, `${all.length} fallback message(s) (want 2)`);
    return `health "${h.problem}" (fix: ${String(h.fix).slice(0, 40)}…), the gateway stayed up; relinked as device ${ctx.linked.deviceId}: ${prompts.length} prompts arrived once each`;
  },
};

const SCENARIOS = [
  link, ownerCommand, approvals, stranger, identity, longText, websocketDrop, gatewayKill, timer, retention, rateLimit, blockedTimer,
  signalOutage, challenge, unregistered, sealUnseal, unlinkRelink,
];

// What the scenarios of tor.js use.
const helpers = { assert, fresh, gatewaySaw, healthSays, isEmptyList, onceEach, until_message };

module.exports = { SCENARIOS, helpers };
