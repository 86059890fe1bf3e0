// Taquilla fan page: pick a show, wait in its queue, pick seats and pay.
// A plain script with no build step. The server sets <html lang> and inlines
// the text dictionary as <script id="i18n" type="application/json">.
'use strict';

// ---- Proof of work ----
// The join challenge requires a decimal nonce such that
// SHA-256(challenge + ":" + nonce) starts with `difficulty` zero bits. The four
// functions below also run inside a Web Worker that is built from their source
// text (see powWorkerSource), so they use nothing outside themselves except
// each other.

// Returns a SHA-256 function of (bytes, length) that hashes bytes[0:length]
// and returns the digest as eight big-endian 32-bit words. The returned array
// is overwritten by the next call.
function makeSha256() {
  const K = new Int32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
  ]);
  const IV = new Int32Array([
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
  ]);
  const H = new Int32Array(8);
  const W = new Int32Array(64);
  let block = new Uint8Array(128);

  function compress(offset) {
    for (let i = 0; i < 16; i++) {
      const j = offset + i * 4;
      W[i] = (block[j] << 24) | (block[j + 1] << 16) | (block[j + 2] << 8) | block[j + 3];
    }
    for (let i = 16; i < 64; i++) {
      const x = W[i - 15];
      const y = W[i - 2];
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      W[i] = (W[i - 16] + s0 + W[i - 7] + s1) | 0;
    }
    let a = H[0], b = H[1], c = H[2], d = H[3], e = H[4], f = H[5], g = H[6], h = H[7];
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (h + S1 + ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      h = g; g = f; f = e; e = (d + t1) | 0;
      d = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    H[0] += a; H[1] += b; H[2] += c; H[3] += d;
    H[4] += e; H[5] += f; H[6] += g; H[7] += h;
  }

  return function sha256(bytes, length) {
    // Padding: one 0x80 byte, zeros, then the message length in bits as a
    // 64-bit big-endian number, up to a multiple of 64 bytes.
    const total = Math.ceil((length + 9) / 64) * 64;
    if (block.length < total) block = new Uint8Array(total);
    block.fill(0, 0, total);
    block.set(bytes.subarray(0, length));
    block[length] = 0x80;
    const bitsHigh = Math.floor(length / 0x20000000);
    const bitsLow = (length << 3) >>> 0;
    for (let i = 0; i < 4; i++) {
      block[total - 8 + i] = (bitsHigh >>> (24 - 8 * i)) & 0xff;
      block[total - 4 + i] = (bitsLow >>> (24 - 8 * i)) & 0xff;
    }
    H.set(IV);
    for (let offset = 0; offset < total; offset += 64) compress(offset);
    return H;
  };
}

function leadingZeroBits(words) {
  let n = 0;
  for (let i = 0; i < words.length; i++) {
    const z = Math.clz32(words[i]);
    n += z;
    if (z < 32) break;
  }
  return n;
}

// Tries the nonces start .. start+count-1 and returns the first that solves
// the challenge as a decimal string, or null.
function powSearch(sha256, challenge, difficulty, start, count) {
  const prefix = new TextEncoder().encode(challenge + ':');
  const buf = new Uint8Array(prefix.length + 20);
  buf.set(prefix);
  for (let nonce = start; nonce < start + count; nonce++) {
    const digits = String(nonce);
    for (let i = 0; i < digits.length; i++) buf[prefix.length + i] = digits.charCodeAt(i);
    if (leadingZeroBits(sha256(buf, prefix.length + digits.length)) >= difficulty) return digits;
  }
  return null;
}

// Runs in the Web Worker. It reports {tried} after every chunk and ends with
// {done: true, nonce}, where nonce is null when `limit` nonces found nothing.
function powWorkerMain(event) {
  const { challenge, difficulty, chunk, limit } = event.data;
  const sha256 = makeSha256();
  for (let start = 0; start < limit; start += chunk) {
    const nonce = powSearch(sha256, challenge, difficulty, start, chunk);
    if (nonce !== null) {
      self.postMessage({ done: true, nonce });
      return;
    }
    self.postMessage({ done: false, tried: start + chunk });
  }
  self.postMessage({ done: true, nonce: null });
}

// Returns the Web Worker script: the functions above, then the message handler.
function powWorkerSource() {
  return [makeSha256, leadingZeroBits, powSearch, powWorkerMain].map(String).join('\n') + '\nself.onmessage = powWorkerMain;\n';
}

// ---- The page ----
(function startPage() {
  if (typeof document === 'undefined') return; // loaded by a test harness without a DOM

  const LANGS = ['es', 'ca', 'en'];
  const ANNOUNCE_EVERY_MS = 30000; // screen readers hear the position at most this often
  const POLL_EVERY_MS = 5000;
  const WS_FAILURES_BEFORE_POLLING = 3;
  const WS_MAX_BACKOFF_MS = 30000;
  const WS_RETRY_WHILE_POLLING_MS = 60000;
  const SALES_REFRESH_MS = 30000;
  const REQUEST_TIMEOUT_MS = 15000;
  const POW_ATTEMPTS = 3; // fresh challenges to try when one expires before it is solved
  const POW_CHUNK = 16384; // nonces between progress reports
  const POW_NONCE_LIMIT = 2 ** 32;
  const POW_MAX_BUDGET_MS = 120000; // cap on solving time when the client clock is off
  const MAX_QUANTITY = 6;
  const VIEWS = ['sales', 'check', 'wait', 'store', 'hold', 'pay', 'order'];

  const $ = (id) => document.getElementById(id);
  const dict = JSON.parse($('i18n').textContent);
  const state = {
    lang: 'es', view: '', busy: false, notice: null,
    sales: [], salesLoaded: false, salesTimer: 0,
    saleId: '', ticket: '', status: null, connMode: '',
    admission: null, seatmap: null, section: '', hold: null, order: null, orderIsCopy: false,
    lastAnnounced: -1, lastAnnounceAt: 0, announceTimer: 0,
  };
  // Idempotency keys of requests whose outcome is unknown (network error or
  // "unavailable"), by action and body, so a retry of the same request is
  // applied once by the server.
  const pendingKeys = new Map();

  // ---- Storage ----
  // localStorage throws in some private modes. The page then works for this
  // visit but loses the fan's place on reload.
  const store = {
    get(key) { try { return localStorage.getItem(key); } catch (e) { return null; } },
    set(key, value) { try { localStorage.setItem(key, value); } catch (e) { /* see above */ } },
    del(key) { try { localStorage.removeItem(key); } catch (e) { /* see above */ } },
    getJSON(key) { try { return JSON.parse(this.get(key)); } catch (e) { return null; } },
  };
  const keys = {
    lang: 'taquilla.lang',
    current: 'taquilla.current',
    joinKey: (sale) => 'taquilla.join-key.' + sale,
    ticket: (sale) => 'taquilla.ticket.' + sale,
    admission: (sale) => 'taquilla.admission.' + sale,
    hold: (sale) => 'taquilla.hold.' + sale,
    order: (sale) => 'taquilla.order.' + sale,
  };

  function uuid() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const hex = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join('-');
  }

  // Returns the sale's join idempotency key, made once and kept until the fan
  // leaves, so a repeated join returns the same place.
  function joinKeyFor(sale) {
    let key = store.get(keys.joinKey(sale));
    if (!key) {
      key = uuid();
      store.set(keys.joinKey(sale), key);
    }
    return key;
  }

  // The current sale and step ("queue", "store" or "order") tell a reload
  // where to return.
  function setCurrent(sale, step) {
    store.set(keys.current, JSON.stringify({ sale, step }));
  }

  function getCurrent() {
    return store.getJSON(keys.current) || {};
  }

  // forgetQueue drops what the page keeps for a sale's queue and store. The
  // last order stays, so the fan can still see it.
  function forgetQueue(sale) {
    [keys.ticket, keys.joinKey, keys.admission, keys.hold].forEach((k) => store.del(k(sale)));
    if (getCurrent().sale === sale) store.del(keys.current);
  }

  // ---- Text and formats ----
  function t(key, vars) {
    const text = (dict[state.lang] || {})[key] || dict.en[key] || key;
    return text.replace(/\{(\w+)\}/g, (m, name) => (vars && name in vars ? String(vars[name]) : m));
  }

  const fmt = {
    number: (n) => new Intl.NumberFormat(state.lang).format(n || 0),
    money: (cents) => new Intl.NumberFormat(state.lang, { style: 'currency', currency: 'EUR' }).format((cents || 0) / 100),
    date(iso) {
      const d = new Date(iso);
      return isNaN(d) ? '' : new Intl.DateTimeFormat(state.lang, { dateStyle: 'full', timeStyle: 'short' }).format(d);
    },
    clock(ms) {
      if (!Number.isFinite(ms)) return '—';
      const s = Math.max(0, Math.ceil(ms / 1000));
      return Math.floor(s / 60) + ':' + String(s % 60).padStart(2, '0');
    },
  };

  function applyStaticText() {
    document.documentElement.lang = state.lang;
    document.title = t('title');
    document.querySelectorAll('[data-i18n]').forEach((node) => { node.textContent = t(node.dataset.i18n); });
    document.querySelectorAll('[data-i18n-label]').forEach((node) => node.setAttribute('aria-label', t(node.dataset.i18nLabel)));
    document.querySelectorAll('[data-lang]').forEach((b) => {
      b.setAttribute('aria-pressed', String(b.dataset.lang === state.lang));
      b.title = (dict[b.dataset.lang] || {}).languageName || '';
    });
  }

  function setLang(lang) {
    if (!LANGS.includes(lang)) return;
    state.lang = lang;
    store.set(keys.lang, lang);
    applyStaticText();
    renderNotice();
    renderView();
  }

  // The server picked the language from ?lang= or Accept-Language. An explicit
  // ?lang= wins, then the fan's earlier choice on the switch.
  function initialLang() {
    const fromServer = LANGS.includes(document.documentElement.lang) ? document.documentElement.lang : 'es';
    if (new URLSearchParams(location.search).has('lang')) return fromServer;
    const saved = store.get(keys.lang);
    return LANGS.includes(saved) ? saved : fromServer;
  }

  // ---- Notices ----
  function notify(kind, key, vars) {
    state.notice = { kind, key, vars };
    renderNotice();
  }

  // Server messages are shown as they come because they cannot be translated.
  function showError(err) {
    state.notice = err.key ? { kind: 'error', key: err.key, vars: err.vars } : { kind: 'error', text: err.message };
    renderNotice();
  }

  function clearNotice() {
    state.notice = null;
    renderNotice();
  }

  function renderNotice() {
    const n = state.notice;
    const box = $('notice');
    box.hidden = !n;
    box.className = 'notice' + (n ? ' notice-' + n.kind : '');
    if (!n) box.textContent = '';
    else if (n.key) box.textContent = t(n.key, n.vars);
    else box.textContent = n.text;
  }

  function announce(text) {
    $('announce').textContent = text;
  }

  // ---- HTTP API ----
  class ApiError extends Error {
    constructor(code, message, status, key, vars) {
      super(message);
      Object.assign(this, { code, status, key, vars });
    }
  }

  async function api(method, path, opts = {}) {
    const headers = { Accept: 'application/json' };
    if (opts.bearer) headers.Authorization = 'Bearer ' + opts.bearer;
    if (opts.idempotencyKey) headers['Idempotency-Key'] = opts.idempotencyKey;
    let body;
    if (opts.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(opts.body);
    }

    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), REQUEST_TIMEOUT_MS);
    let res;
    let data = null;
    try {
      res = await fetch(path, { method, headers, body, signal: abort.signal, cache: 'no-store', credentials: 'same-origin' });
      data = await res.json().catch(() => null);
    } catch (e) {
      throw new ApiError('network', '', 0, 'errNetwork');
    } finally {
      clearTimeout(timer);
    }

    if (!res.ok) {
      const detail = (data && data.error) || {};
      const status = res.status;
      if (detail.message) throw new ApiError(detail.code || 'http_' + status, detail.message, status);
      throw new ApiError(detail.code || 'http_' + status, '', status, 'errHttp', { status });
    }
    if (data === null) throw new ApiError('invalid_response', '', res.status, 'errResponse');
    return data;
  }

  const enc = encodeURIComponent;
  const saleURL = (sale, action) => '/api/v1/sales/' + enc(sale) + '/' + action;
  const holdURL = (id, action) => '/api/v1/holds/' + enc(id) + (action ? '/' + action : '');
  const outcomeUnknown = (err) => err.code === 'network' || err.code === 'unavailable';

  // Sends a request with a fresh Idempotency-Key per attempt, except that an
  // identical request after an unknown outcome reuses the earlier key.
  async function withAttemptKey(request, send) {
    const key = pendingKeys.get(request) || uuid();
    pendingKeys.set(request, key);
    try {
      const result = await send(key);
      pendingKeys.delete(request);
      return result;
    } catch (err) {
      if (!outcomeUnknown(err)) pendingKeys.delete(request);
      throw err;
    }
  }

  // Runs a server action with the current view's controls disabled, so a
  // double tap cannot send it twice, and reports its error.
  async function busy(action) {
    if (state.busy) return;
    state.busy = true;
    clearNotice();
    const view = $('view-' + state.view);
    const controls = Array.from(view.querySelectorAll('button, input, select')).filter((c) => !c.disabled);
    controls.forEach((c) => { c.disabled = true; });
    view.setAttribute('aria-busy', 'true');
    try {
      await action();
    } catch (err) {
      handleError(err);
    } finally {
      state.busy = false;
      controls.forEach((c) => { c.disabled = false; });
      view.removeAttribute('aria-busy');
      renderView();
    }
  }

  function handleError(err) {
    if (!(err instanceof ApiError)) {
      console.error(err);
      notify('error', 'errUnexpected');
      return;
    }
    showError(err);
    // A rejected ticket or admission token cannot recover. Start over.
    if (err.code === 'unauthorized' && state.saleId) {
      stopLive();
      forgetQueue(state.saleId);
      goToSales();
    }
  }

  // ---- Views ----
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function show(view) {
    const changed = state.view !== view;
    const first = state.view === '';
    state.view = view;
    VIEWS.forEach((v) => { $('view-' + v).hidden = v !== view; });
    clearInterval(state.salesTimer);
    if (view === 'sales') state.salesTimer = setInterval(loadSales, SALES_REFRESH_MS);
    renderView();
    // Move focus to the new heading so screen readers follow the change.
    if (changed && !first) $('view-' + view).querySelector('h1').focus();
  }

  function renderView() {
    const render = { sales: renderSales, wait: renderWait, store: renderStore, hold: renderCart, pay: renderCart, order: renderOrder }[state.view];
    if (render) render();
    tick();
  }

  function findSale(id) {
    return state.sales.find((s) => s.id === id) || (state.seatmap && state.seatmap.sale) || null;
  }

  function goToSales() {
    state.saleId = '';
    store.del(keys.current);
    show('sales');
    loadSales();
  }

  // ---- Show list ----
  async function loadSales() {
    try {
      const data = await api('GET', '/api/v1/sales');
      state.sales = Array.isArray(data.sales) ? data.sales : [];
      state.salesLoaded = true;
    } catch (err) {
      if (state.view === 'sales') showError(err);
    }
    renderView();
  }

  function renderSales() {
    $('sales-loading').hidden = state.salesLoaded;
    $('sales-empty').hidden = !state.salesLoaded || state.sales.length > 0;
    $('sales-list').replaceChildren(...state.sales.map(saleItem));
  }

  function saleItem(sale, index) {
    const item = el('li', 'card');
    const title = el('h2', 'card-title', sale.name);
    title.id = 'sale-title-' + index;
    const q = sale.queue || {};
    const closed = Boolean(q.closed_reason);
    let status = t('waitingCount', { n: fmt.number(q.waiting) });
    if (closed) status = q.closed_reason === 'sold_out' ? t('soldOut') : t('saleClosed');
    else if (q.paused) status = t('salePaused');

    item.append(
      title,
      el('p', 'muted', [sale.venue, sale.city].filter(Boolean).join(' · ')),
      el('p', null, fmt.date(sale.starts_at)),
      el('p', 'sale-status' + (closed ? ' is-closed' : ''), status),
    );
    const actions = el('div', 'actions');
    const inQueue = Boolean(store.get(keys.ticket(sale.id)));
    const join = el('button', 'btn btn-primary', inQueue ? t('returnToQueue') : t('joinQueue'));
    join.type = 'button';
    join.disabled = closed && !inQueue;
    join.setAttribute('aria-describedby', title.id);
    join.addEventListener('click', () => startJoin(sale.id));
    actions.append(join);
    if (store.get(keys.order(sale.id))) {
      const view = el('button', 'btn', t('viewOrder'));
      view.type = 'button';
      view.setAttribute('aria-describedby', title.id);
      view.addEventListener('click', () => openOrder(sale.id));
      actions.append(view);
    }
    item.append(actions);
    return item;
  }

  // ---- Joining: proof of work, then POST join ----
  function startJoin(sale) {
    busy(async () => {
      state.saleId = sale;
      show('check');
      try {
        const res = await joinWithProof(sale, store.get(keys.ticket(sale)));
        store.set(keys.ticket(sale), res.ticket);
        enterQueue(sale, res.ticket, res.status);
      } catch (err) {
        // A stored ticket that the server rejects is dropped, so the next
        // join gets a new place instead of failing again.
        if (err.code === 'unauthorized') forgetQueue(sale);
        goToSales();
        throw err;
      }
    });
  }

  async function joinWithProof(sale, ticket) {
    for (let attempt = 1; attempt <= POW_ATTEMPTS; attempt++) {
      const challenge = await api('GET', saleURL(sale, 'challenge'));
      const nonce = await solveChallenge(challenge);
      if (nonce === null) continue; // the challenge expired first: get a new one
      const body = { challenge: challenge.challenge, nonce };
      if (ticket) body.ticket = ticket;
      return api('POST', saleURL(sale, 'join'), { body, idempotencyKey: joinKeyFor(sale) });
    }
    throw new ApiError('pow_timeout', '', 0, 'errCheckTimeout');
  }

  // Resolves to the nonce, or to null when the challenge expires first.
  function solveChallenge(challenge) {
    const difficulty = Math.max(0, Math.floor(Number(challenge.difficulty) || 0));
    if (difficulty === 0) return Promise.resolve('0');
    const expected = 2 ** difficulty;
    const onProgress = (tried) => {
      // The chance that a solution is among the nonces tried so far.
      $('check-progress').value = 1 - Math.exp(-tried / expected);
      $('check-line').textContent = t('checkProgress', { n: fmt.number(tried) });
    };
    onProgress(0);
    const expires = Date.parse(challenge.expires_at);
    const budget = Number.isFinite(expires) ? Math.min(POW_MAX_BUDGET_MS, Math.max(5000, expires - Date.now() - 2000)) : POW_MAX_BUDGET_MS;

    return new Promise((resolve) => {
      let job = null;
      let timer = 0;
      const finish = (nonce) => {
        clearTimeout(timer);
        if (job) job.stop();
        resolve(nonce);
      };
      job = runPow(challenge.challenge, difficulty, onProgress, finish);
      timer = setTimeout(() => finish(null), budget);
    });
  }

  // Solves in a Web Worker built from the functions at the top of this file,
  // or on the page in small steps when workers are unavailable (for example
  // when a Content-Security-Policy blocks blob: workers).
  function runPow(challenge, difficulty, onProgress, onDone) {
    const job = { stopped: false, worker: null, url: '', fallback: null };
    const startFallback = () => {
      if (!job.stopped && !job.fallback) job.fallback = powOnPage(challenge, difficulty, onProgress, onDone);
    };
    job.stop = () => {
      job.stopped = true;
      if (job.worker) job.worker.terminate();
      if (job.url) URL.revokeObjectURL(job.url);
      if (job.fallback) job.fallback.stop();
    };
    try {
      job.url = URL.createObjectURL(new Blob([powWorkerSource()], { type: 'text/javascript' }));
      job.worker = new Worker(job.url);
      job.worker.onmessage = (e) => (e.data.done ? onDone(e.data.nonce) : onProgress(e.data.tried));
      job.worker.onerror = (e) => {
        e.preventDefault();
        job.worker.terminate();
        job.worker = null;
        startFallback();
      };
      job.worker.postMessage({ challenge, difficulty, chunk: POW_CHUNK, limit: POW_NONCE_LIMIT });
    } catch (e) {
      setTimeout(startFallback, 0);
    }
    return job;
  }

  function powOnPage(challenge, difficulty, onProgress, onDone) {
    const sha256 = makeSha256();
    const chunk = 2048; // small enough to keep the page responsive between steps
    let start = 0;
    let stopped = false;
    const step = () => {
      if (stopped) return;
      if (start >= POW_NONCE_LIMIT) return onDone(null);
      const nonce = powSearch(sha256, challenge, difficulty, start, chunk);
      start += chunk;
      if (nonce !== null) return onDone(nonce);
      onProgress(start);
      setTimeout(step, 0);
    };
    setTimeout(step, 0);
    return { stop() { stopped = true; } };
  }

  // ---- Waiting room ----
  function enterQueue(sale, ticket, status) {
    state.saleId = sale;
    state.ticket = ticket;
    state.status = null;
    state.lastAnnounced = -1;
    state.lastAnnounceAt = 0;
    setCurrent(sale, 'queue');
    show('wait');
    if (status) applyStatus(status);
    if (state.view === 'wait') startLive();
  }

  function applyStatus(s) {
    if (!s || (s.sale && s.sale !== state.saleId)) return;
    // NOTE: statuses are not ordered by updated_at, because edge replicas'
    // clocks may differ. A poll that ends after the WebSocket has taken over
    // can show an older status until the next frame.
    state.status = s;

    switch (s.state) {
      case 'admitted': return onAdmitted(s);
      case 'left': return endQueue(true, 'msgLeft');
      case 'done': return endQueue(true, 'msgDone');
      // The server does not know this ticket. Keep it: joining again with it
      // returns the same place when the server still has it.
      case 'unknown': return endQueue(false, 'msgUnknown');
      default:
        renderView();
        announcePosition();
    }
  }

  function endQueue(forget, messageKey) {
    const sale = state.saleId;
    stopLive();
    if (forget) forgetQueue(sale);
    notify('info', messageKey);
    goToSales();
  }

  function onAdmitted(s) {
    if (s.admission && s.admission.token) store.set(keys.admission(state.saleId), JSON.stringify(s.admission));
    if (!admissionFor(state.saleId)) {
      notify('error', 'errNoAdmission');
      return;
    }
    stopLive();
    announce(t('announceAdmitted'));
    openStore();
  }

  function estimateText(s) {
    const min = Math.max(0, s.wait_min_s || 0);
    const max = Math.max(min, s.wait_max_s || 0);
    if (max === 0) return s.paused ? t('estimatePaused') : t('estimating');
    if (max < 60) return t('estimateUnderMinute');
    if (max >= 2 * 3600) return t('estimateHours', { min: Math.floor(min / 3600), max: Math.ceil(max / 3600) });
    const lo = Math.floor(min / 60);
    const hi = Math.ceil(max / 60);
    return lo === hi ? t('estimateMinutes', { n: hi }) : t('estimateMinutesRange', { min: lo, max: hi });
  }

  function renderWait() {
    const s = state.status;
    const sale = findSale(state.saleId);
    $('wait-show').textContent = sale ? sale.name : '';
    const closed = Boolean(s && s.state === 'closed');
    $('wait-position').textContent = s && s.position > 0 ? fmt.number(s.position) : '—';
    $('wait-ahead').textContent = s ? t('ahead', { n: fmt.number(s.ahead) }) : t('connecting');
    $('wait-estimate').textContent = s && !closed ? estimateText(s) : '';

    const hasEstimate = Boolean(s && (s.wait_min_s > 0 || s.wait_max_s > 0));
    $('wait-closed').hidden = !closed;
    let closedText = '';
    if (closed) closedText = s.closed_reason === 'sold_out' ? t('closedSoldOut') : t('closedOther');
    $('wait-closed').textContent = closedText;
    $('wait-paused').hidden = !(s && s.paused && hasEstimate && !closed);
    $('wait-measured').hidden = !(s && !s.measured && hasEstimate && !closed);
    $('wait-stale').hidden = !(s && s.stale);
    $('wait-back').hidden = !closed;
    $('wait-conn').textContent = connText();
  }

  // Announces position changes at most once per ANNOUNCE_EVERY_MS, and the
  // latest position once the interval has passed.
  function announcePosition() {
    clearTimeout(state.announceTimer);
    const s = state.status;
    if (state.view !== 'wait' || !s || s.state !== 'waiting' || s.position === state.lastAnnounced) return;
    const wait = state.lastAnnounceAt + ANNOUNCE_EVERY_MS - Date.now();
    if (wait > 0) {
      state.announceTimer = setTimeout(announcePosition, wait);
      return;
    }
    state.lastAnnounced = s.position;
    state.lastAnnounceAt = Date.now();
    announce(t('announcePosition', { n: fmt.number(s.position), estimate: estimateText(s) }));
  }

  function leaveQueue() {
    if (!window.confirm(t('confirmLeave'))) return;
    busy(async () => {
      try {
        await api('POST', '/api/v1/leave', { bearer: state.ticket });
      } catch (err) {
        if (err.code !== 'unauthorized') throw err; // the place is gone already
      }
      endQueue(true, 'msgLeft');
    });
  }

  // ---- Live updates: WebSocket, with polling as the fallback ----
  const conn = { active: false, ws: null, failures: 0, retryTimer: 0, pollTimer: 0, polling: false };

  function setConnMode(mode) {
    state.connMode = mode;
    if (state.view === 'wait') $('wait-conn').textContent = connText();
  }

  function connText() {
    return state.connMode ? t(state.connMode, { s: POLL_EVERY_MS / 1000 }) : '';
  }

  function startLive() {
    stopLive();
    conn.active = true;
    conn.failures = 0;
    setConnMode('connConnecting');
    openSocket();
  }

  function stopLive() {
    conn.active = false;
    clearTimeout(conn.retryTimer);
    clearTimeout(state.announceTimer);
    clearInterval(conn.pollTimer);
    conn.pollTimer = 0;
    closeSocket();
  }

  function closeSocket() {
    const ws = conn.ws;
    conn.ws = null;
    if (!ws) return;
    ws.onmessage = ws.onclose = null;
    ws.close(1000);
  }

  function openSocket() {
    if (!conn.active) return;
    closeSocket();
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    let ws;
    try {
      ws = new WebSocket(scheme + '//' + location.host + '/api/v1/ws?ticket=' + enc(state.ticket));
    } catch (e) {
      onSocketFailure();
      return;
    }
    let gotFrame = false;
    conn.ws = ws;
    ws.onmessage = (e) => {
      // Count the socket as working only once a frame arrives, so a server
      // that accepts and then drops the connection still backs off.
      if (!gotFrame) {
        gotFrame = true;
        conn.failures = 0;
        clearInterval(conn.pollTimer);
        conn.pollTimer = 0;
        setConnMode('connLive');
      }
      onSocketFrame(e.data);
    };
    ws.onclose = () => {
      if (conn.ws !== ws) return;
      conn.ws = null;
      onSocketFailure();
    };
  }

  function onSocketFrame(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch (e) {
      return;
    }
    if (frame.type === 'status') applyStatus(frame.status);
    else if (frame.type === 'error') onLiveError(frame.error || {});
  }

  function onLiveError(error) {
    if (error.code === 'unauthorized') {
      handleError(new ApiError(error.code, error.message || '', 401, error.message ? '' : 'errTicketRejected'));
      return;
    }
    if (error.message) showError(error);
  }

  // Backs off from 1 s, doubling up to WS_MAX_BACKOFF_MS, plus up to 30%
  // jitter. After WS_FAILURES_BEFORE_POLLING failures in a row it polls and
  // tries the socket again every WS_RETRY_WHILE_POLLING_MS, so with 3 failures
  // only the 1 s and 2 s steps run.
  function onSocketFailure() {
    if (!conn.active) return;
    conn.failures++;
    let delay = Math.min(WS_MAX_BACKOFF_MS, 1000 * 2 ** (conn.failures - 1));
    if (conn.failures >= WS_FAILURES_BEFORE_POLLING) {
      startPolling();
      delay = WS_RETRY_WHILE_POLLING_MS;
    } else {
      setConnMode('connRetrying');
    }
    conn.retryTimer = setTimeout(openSocket, delay + Math.random() * delay * 0.3);
  }

  function startPolling() {
    if (conn.pollTimer) return;
    setConnMode('connPolling');
    pollStatus();
    conn.pollTimer = setInterval(pollStatus, POLL_EVERY_MS);
  }

  async function pollStatus() {
    if (!conn.active || conn.polling) return;
    conn.polling = true;
    try {
      const s = await api('GET', '/api/v1/status', { bearer: state.ticket });
      if (!conn.active) return;
      if (conn.pollTimer) setConnMode('connPolling');
      applyStatus(s);
    } catch (err) {
      if (!conn.active) return;
      if (err.code === 'unauthorized') handleError(err);
      else setConnMode('connProblem');
    } finally {
      conn.polling = false;
    }
  }

  // ---- Store: sections, hold, checkout, pay ----
  function admissionFor(sale) {
    const a = store.getJSON(keys.admission(sale));
    if (!a || !a.token) return null;
    if (Date.parse(a.expires_at) <= Date.now()) {
      store.del(keys.admission(sale));
      return null;
    }
    return a;
  }

  function openStore() {
    state.admission = admissionFor(state.saleId);
    if (!state.admission) {
      notify('error', 'msgAdmissionExpired');
      goToSales();
      return;
    }
    setCurrent(state.saleId, 'store');
    state.hold = store.getJSON(keys.hold(state.saleId));
    let view = 'store';
    if (state.hold) view = state.hold.state === 'CHECKOUT' ? 'pay' : 'hold';
    show(view);
    refreshSeatmap();
  }

  // Loads the seat map outside busy(), so it also runs when called from
  // inside another action.
  async function refreshSeatmap() {
    try {
      await loadSeatmap();
    } catch (err) {
      handleError(err);
    }
    renderView();
  }

  async function loadSeatmap() {
    state.seatmap = await api('GET', saleURL(state.saleId, 'seatmap'), { bearer: state.admission.token });
    const sections = state.seatmap.sections || [];
    const picked = sections.find((s) => s.id === state.section);
    if (!picked || picked.available <= 0) state.section = '';
  }

  function sortedSections() {
    const sections = (state.seatmap && state.seatmap.sections) || [];
    return sections.slice().sort((a, b) => a.rank - b.rank || String(a.name).localeCompare(b.name));
  }

  function tierPrice(tierId) {
    const tier = ((state.seatmap && state.seatmap.tiers) || []).find((x) => x.id === tierId);
    return tier ? tier.price_cents : null;
  }

  function sectionName(id) {
    const section = ((state.seatmap && state.seatmap.sections) || []).find((s) => s.id === id);
    return section ? section.name : id;
  }

  function renderStore() {
    const sale = findSale(state.saleId);
    $('store-show').textContent = sale ? sale.name : '';
    $('store-loading').hidden = Boolean(state.seatmap);
    $('sections').replaceChildren(...sortedSections().map(sectionItem));
    renderQuantity();
  }

  function sectionItem(section, index) {
    const item = el('li', 'section-item');
    const input = el('input');
    input.type = 'radio';
    input.name = 'section';
    input.id = 'section-' + index;
    input.value = section.id;
    input.checked = section.id === state.section;
    input.disabled = section.available <= 0 || state.busy;
    input.addEventListener('change', () => {
      state.section = section.id;
      renderQuantity();
    });

    const label = el('label');
    label.htmlFor = input.id;
    const price = tierPrice(section.tier);
    const kind = section.kind === 'standing' ? ' · ' + t('standing') : '';
    label.append(
      el('span', 'section-name', section.name + kind),
      el('span', 'section-price', price === null ? '' : fmt.money(price)),
      el('span', 'section-avail', section.available > 0 ? t('availableCount', { n: fmt.number(section.available) }) : t('soldOut')),
    );
    item.append(input, label);
    return item;
  }

  function renderQuantity() {
    const select = $('quantity');
    const section = sortedSections().find((s) => s.id === state.section);
    const max = section ? Math.max(1, Math.min(MAX_QUANTITY, section.available)) : MAX_QUANTITY;
    const current = Math.min(Number(select.value) || 1, max);
    const options = [];
    for (let n = 1; n <= max; n++) options.push(el('option', null, fmt.number(n)));
    options.forEach((o, i) => { o.value = String(i + 1); });
    select.replaceChildren(...options);
    select.value = String(current);
    $('store-find').disabled = state.busy || !section;
  }

  function findSeats(event) {
    event.preventDefault();
    const section = state.section;
    const quantity = Number($('quantity').value) || 1;
    if (!section) {
      notify('error', 'msgPickSection');
      return;
    }
    const body = { section, quantity };
    busy(async () => {
      try {
        const hold = await withAttemptKey('hold ' + JSON.stringify(body), (key) =>
          api('POST', '/api/v1/holds', { bearer: state.admission.token, idempotencyKey: key, body }));
        setHold(hold);
        show('hold');
      } catch (err) {
        if (err.code === 'conflict' || err.code === 'sold_out') await loadSeatmap().catch(() => {});
        throw err;
      }
    });
  }

  function setHold(hold) {
    state.hold = hold;
    if (hold) store.set(keys.hold(state.saleId), JSON.stringify(hold));
    else store.del(keys.hold(state.saleId));
  }

  // Returns to the section list with fresh availability.
  function backToStore(messageKey) {
    setHold(null);
    if (messageKey) notify('error', messageKey);
    show('store');
    refreshSeatmap();
  }

  function renderSeats(list, seats) {
    list.replaceChildren(...(seats || []).map((seat) => {
      const place = seat.row ? t('rowSeat', { row: seat.row, number: seat.number }) : t('standing');
      return el('li', null, sectionName(seat.section) + ' · ' + place + ' · ' + fmt.money(seat.price_cents));
    }));
  }

  // Renders the held seats in the hold or the pay view.
  function renderCart() {
    if (!state.hold) return;
    renderSeats($(state.view + '-seats'), state.hold.seats);
    $(state.view + '-total').textContent = t('total', { amount: fmt.money(state.hold.total_cents) });
  }

  function checkout() {
    busy(async () => {
      const hold = await api('POST', holdURL(state.hold.id, 'checkout'), { bearer: state.admission.token });
      setHold(hold);
      show('pay');
    });
  }

  function releaseHold() {
    busy(async () => {
      try {
        await api('DELETE', holdURL(state.hold.id), { bearer: state.admission.token });
      } catch (err) {
        // not_found or conflict: the hold is already gone (expired or sold).
        if (err.code !== 'not_found' && err.code !== 'conflict') throw err;
      }
      backToStore('');
    });
  }

  function pay(event) {
    event.preventDefault();
    const card = $('card').value.replace(/[\s-]/g, '');
    if (!/^\d{12,19}$/.test(card)) {
      notify('error', 'msgCardInvalid');
      $('card').focus();
      return;
    }
    const hold = state.hold;
    busy(async () => {
      const res = await withAttemptKey('pay ' + hold.id + ' ' + card, (key) =>
        api('POST', holdURL(hold.id, 'pay'), { bearer: state.admission.token, idempotencyKey: key, body: { card } }));
      if (res.order) {
        setHold(null);
        saveOrder(res.order, false);
        setCurrent(state.saleId, 'order');
        show('order');
        return;
      }
      backToStore('msgDeclined');
    });
  }

  // Runs every second: countdowns, and the end of a hold.
  function tick() {
    if (state.view === 'store' && state.admission) {
      const left = Date.parse(state.admission.expires_at) - Date.now();
      $('store-timer').textContent = Number.isFinite(left) ? t('admissionTimer', { time: fmt.clock(left) }) : '';
    }
    if ((state.view === 'hold' || state.view === 'pay') && state.hold) {
      const left = Date.parse(state.hold.expires_at) - Date.now();
      $(state.view + '-timer').textContent = t('holdTimer', { time: fmt.clock(left) });
      if (left <= 0 && !state.busy) backToStore('msgHoldExpired');
    }
  }

  // ---- Order ----
  function saveOrder(order, isCopy) {
    state.order = order;
    state.orderIsCopy = isCopy;
    store.set(keys.order(state.saleId), JSON.stringify(order));
  }

  // Shows the stored order at once, then reloads it while the admission token
  // still works. Without it the stored copy stays on screen, marked as such.
  async function openOrder(sale) {
    state.saleId = sale;
    setCurrent(sale, 'order');
    state.order = store.getJSON(keys.order(sale));
    state.orderIsCopy = true;
    if (!state.order) return goToSales();
    show('order');
    const admission = admissionFor(sale);
    if (!admission) return;
    try {
      const order = await api('GET', '/api/v1/orders/' + enc(state.order.id), { bearer: admission.token });
      saveOrder(order, false);
      if (state.view === 'order') renderOrder();
    } catch (err) {
      if (err.code !== 'unauthorized') showError(err);
    }
  }

  function renderOrder() {
    const order = state.order;
    if (!order) return;
    $('order-id').textContent = t('orderId', { id: order.id });
    renderSeats($('order-seats'), order.seats);
    $('order-total').textContent = t('total', { amount: fmt.money(order.total_cents) });
    $('order-saved').hidden = !state.orderIsCopy;
  }

  // The fan is done with this sale. The order stays viewable from the list.
  function finishOrder() {
    forgetQueue(state.saleId);
    clearNotice();
    goToSales();
  }

  // ---- Start ----
  function bindEvents() {
    document.querySelectorAll('[data-lang]').forEach((b) => b.addEventListener('click', () => setLang(b.dataset.lang)));
    $('wait-leave').addEventListener('click', leaveQueue);
    $('wait-back').addEventListener('click', () => { stopLive(); goToSales(); });
    $('store-form').addEventListener('submit', findSeats);
    $('hold-checkout').addEventListener('click', checkout);
    $('hold-release').addEventListener('click', releaseHold);
    $('pay-form').addEventListener('submit', pay);
    $('pay-release').addEventListener('click', releaseHold);
    $('order-back').addEventListener('click', finishOrder);
    setInterval(tick, 1000);
  }

  // A refresh returns the fan to where they were: the order, the store while
  // the admission lasts, or their place in the queue.
  function resume() {
    const { sale, step } = getCurrent();
    if (typeof sale !== 'string' || !sale) return goToSales();
    state.saleId = sale;
    state.ticket = store.get(keys.ticket(sale)) || '';
    if (step === 'order' && store.get(keys.order(sale))) return openOrder(sale);
    if (admissionFor(sale)) return openStore();
    if (state.ticket) return enterQueue(sale, state.ticket, null);
    goToSales();
  }

  state.lang = initialLang();
  applyStaticText();
  bindEvents();
  resume();
  if (state.view !== 'sales') loadSales(); // show names in the queue and store views
})();
