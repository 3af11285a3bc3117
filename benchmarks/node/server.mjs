// The benchmark's reference provider: panva's oidc-provider 9 with what our provider does in the
// measured scenarios (docs/performance.md, "The providers under test"). Started by benchmarks/servers.py:
//
//   node server.mjs   with BENCH_PORT, BENCH_CLIENT_ID, BENCH_CLIENT_SECRET, BENCH_REDIRECT_URI,
//                     BENCH_PASSWORD, BENCH_PHONE_PREFIX, BENCH_USERS, BENCH_OUTBOX
//
// Storage is in memory (one process, nothing persisted): the Map adapter below. The library's
// own development adapter is an LRU of 1,000 entries, too few for the codes minted beforehand.
import { appendFileSync } from 'node:fs';
import { generateKeyPairSync, randomBytes, randomInt } from 'node:crypto';

import Provider from 'oidc-provider';
import { Algorithm, hash, verify } from '@node-rs/argon2';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const port = Number(env('BENCH_PORT'));
const issuer = `http://127.0.0.1:${port}`;
const phonePrefix = env('BENCH_PHONE_PREFIX');
const users = Number(env('BENCH_USERS'));
const outbox = env('BENCH_OUTBOX');

// The same argon2id parameters as the provider's defaults (IDP_PASSWORD_*: t=2, m=19 MiB, p=1).
const passwordHash = await hash(env('BENCH_PASSWORD'), {
  algorithm: Algorithm.Argon2id, timeCost: 2, memoryCost: 19 * 1024, parallelism: 1,
});
// Operators are phone prefix + a zero-padded number below BENCH_USERS, all with the one password.
const accountOf = (phone) => {
  if (!/^\d{11}$/.test(phone) || !phone.startsWith(phonePrefix)) return undefined;
  return Number(phone.slice(phonePrefix.length)) < users ? phone : undefined;
};
const smsCodes = new Map(); // phone -> the last code sent, removed when used

const stored = new Map(); // "Model:id" -> { payload, expiresAt (ms) }
const byGrant = new Map(); // grantId -> Set of "Model:id"
const byUid = new Map(); // session uid -> session id

class MapAdapter {
  constructor(model) { this.model = model; }

  key(id) { return `${this.model}:${id}`; }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    stored.set(key, { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
    if (payload.grantId) {
      if (!byGrant.has(payload.grantId)) byGrant.set(payload.grantId, new Set());
      byGrant.get(payload.grantId).add(key);
    }
    if (payload.uid && this.model === 'Session') byUid.set(payload.uid, id);
  }

  async find(id) {
    const entry = stored.get(this.key(id));
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      stored.delete(this.key(id));
      return undefined;
    }
    return entry.payload;
  }

  async findByUid(uid) { return byUid.has(uid) ? this.find(byUid.get(uid)) : undefined; }

  async findByUserCode() { return undefined; }

  async consume(id) {
    const entry = stored.get(this.key(id));
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) { stored.delete(this.key(id)); }

  async revokeByGrantId(grantId) {
    for (const key of byGrant.get(grantId) ?? []) stored.delete(key);
    byGrant.delete(grantId);
  }
}

setInterval(() => { // drop what has expired, as a store with TTLs would
  const now = Date.now();
  for (const [key, entry] of stored) if (entry.expiresAt <= now) stored.delete(key);
}, 30_000).unref();

const signingKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });

const provider = new Provider(issuer, {
  adapter: MapAdapter,
  clients: [{
    client_id: env('BENCH_CLIENT_ID'),
    client_secret: env('BENCH_CLIENT_SECRET'),
    redirect_uris: [env('BENCH_REDIRECT_URI')],
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    scope: 'openid profile phone',
    id_token_signed_response_alg: 'ES256',
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [{ ...signingKey, alg: 'ES256', use: 'sig', kid: 'bench-es256' }] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  claims: { openid: ['sub'], profile: ['name'], phone: ['phone_number'] },
  scopes: ['openid', 'profile', 'phone'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true, allowedPolicy: async () => true },
    userinfo: { enabled: true },
    revocation: { enabled: true },
  },
  pkce: { required: () => true },
  // Our provider issues a refresh token to every client allowed the grant and rotates it on use.
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: () => true,
  ttl: {
    AuthorizationCode: 600, // as the benchmark sets IDP_CODE_TTL for ours
    AccessToken: 600,
    ClientCredentials: 600,
    IdToken: 600,
    RefreshToken: 8 * 3600,
    Grant: 8 * 3600,
    Interaction: 3600,
    Session: 12 * 3600,
  },
  responseTypes: ['code'],
  findAccount: async (ctx, sub) => ({
    accountId: sub,
    claims: async () => ({ sub, name: `压测${sub.slice(-4)}`, phone_number: sub }),
  }),
  // No consent step (our provider asks none of a registered client for these scopes).
  loadExistingGrant: async (ctx) => {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope([...ctx.oidc.requestParamScopes].join(' '));
    await grant.save();
    return grant;
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
});

async function formBody(req) {
  let raw = '';
  for await (const chunk of req) {
    raw += chunk;
    if (raw.length > 10_000) throw new Error('body too large');
  }
  return new URLSearchParams(raw);
}

const loginPage = (uid, error = '') => `<!doctype html><meta charset="utf-8"><title>登录</title>
<form method="post" action="/interaction/${uid}/login">${error ? `<p>${error}</p>` : ''}
<input name="phone"> <input name="password" type="password"> <input name="sms_code">
<button>登录</button></form>`;

// The login interaction: GET the form, POST the SMS request, POST phone + password + SMS code.
provider.use(async (ctx, next) => {
  const match = ctx.path.match(/^\/interaction\/([\w-]+)(\/sms-code|\/login)?$/);
  if (!match) return next();
  const [, uid, action] = match;
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  if (details.uid !== uid) ctx.throw(400, 'interaction mismatch');
  if (!action && ctx.method === 'GET') {
    ctx.type = 'html';
    ctx.body = loginPage(uid);
    return undefined;
  }
  if (ctx.method !== 'POST') ctx.throw(405);
  const form = await formBody(ctx.req);
  const phone = form.get('phone') || '';
  if (action === '/sms-code') {
    if (accountOf(phone)) {
      const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
      smsCodes.set(phone, code);
      const line = { time: new Date().toISOString(), phone, purpose: 'login', text: '', code };
      appendFileSync(outbox, `${JSON.stringify(line)}\n`);
    }
    ctx.body = { sent: true };
    return undefined;
  }
  const accountId = accountOf(phone);
  const code = smsCodes.get(phone);
  const passwordOk = await verify(passwordHash, form.get('password') || '');
  if (!accountId || !passwordOk || !code || code !== form.get('sms_code')) {
    ctx.status = 400;
    ctx.type = 'html';
    ctx.body = loginPage(uid, '手机号、密码或验证码错误。');
    return undefined;
  }
  smsCodes.delete(phone);
  ctx.status = 303;
  ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, { login: { accountId } }, {
    mergeWithLastSubmission: false,
  }));
  return undefined;
});

provider.listen(port, '127.0.0.1');
console.log(`oidc-provider listening on ${issuer} with ${users} operators`);
