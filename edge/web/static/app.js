// Taquilla fan page: pick a show, wait in its queue, pick seats and pay.
// A plain script with no build step, loaded after pow.js. The server sets
// <html lang> and inlines the text dictionary as
// <script id="i18n" type="application/json">.
'use strict';

// ---- The page ----
(function startPage() {
  if (typeof document === 'undefined') return; // no DOM, so no page to run

  const LANGS = ['es', 'ca', 'en'];
  const ANNOUNCE_EVERY_MS = 30000; // screen readers hear the position at most this often
  const POLL_EVERY_MS = 5000;
  const WS_FAILURES_BEFORE_POLLING = 3;
  const WS_MAX_BACKOFF_MS = 30000;
  const WS_RETRY_WHILE_POLLING_MS = 60000;
  const SALES_REFRESH_MS = 30000;
  const REQUEST_TIMEOUT_MS = 15000;
  const POW_ATTEMPTS = 3; // fresh challenges to try when one expires before it is solved
  const POW_CHUNK = 4096; // nonces between progress reports
  const POW_MAX_BUDGET_MS = 120000; // cap on solving time when the client clock is off
  // The number of tries is random, so the bar stops short of full until a
  // solution is found.
  const POW_PROGRESS_CAP = 0.95;
  const POW_SLOW_MS = 8000; // after this, the check screen tells the fan that it can take longer
  // NOTE: the API gives no time zone for a venue, so the page shows every
  // show time in Madrid time and names that zone. That is right for venues in
  // peninsular Spain and the Balearic Islands, not for the Canary Islands.
  const VENUE_TIME_ZONE = 'Europe/Madrid';
  const MAX_QUANTITY = 6;
  const VIEWS = ['sales', 'check', 'wait', 'store', 'hold', 'pay', 'order'];

  const $ = (id) => document.getElementById(id);
  const dict = JSON.parse($('i18n').textContent);
  const state = {
    lang: 'es', view: '', busy: false, notice: null,
    sales: [], salesLoaded: false, salesTimer: 0,
    saleId: '', ticket: '', status: null, connMode: '', check: null,
    admission: null, seatmap: null, seatmapSale: '', section: '', hold: null, order: null, orderIsCopy: false,
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
  // The fan identity from the promoter's login lives in sessionStorage: it
  // is a credential, so it ends with the tab, like the promoter's session.
  const identityStore = {
    key: 'taquilla.identity',
    get() { try { return sessionStorage.getItem(this.key) || ''; } catch (e) { return ''; } },
    set(value) { try { sessionStorage.setItem(this.key, value); } catch (e) { /* this visit only */ } },
    del() { try { sessionStorage.removeItem(this.key); } catch (e) { /* see above */ } },
  };

  // takeIdentityFromURL keeps the ?identity= that the promoter's login
  // sends the fan with, then removes it from the address bar, so it stays
  // out of the history, bookmarks and shared links.
  function takeIdentityFromURL() {
    const params = new URLSearchParams(location.search);
    const identity = params.get('identity');
    if (identity === null) return;
    if (identity) identityStore.set(identity);
    params.delete('identity');
    const query = params.toString();
    try {
      history.replaceState(history.state, '', location.pathname + (query ? '?' + query : '') + location.hash);
    } catch (e) { /* the address bar keeps it; the page still works */ }
  }

  const keys = {
    lang: 'taquilla.lang',
    current: 'taquilla.current',
    joinKey: (sale) => 'taquilla.join-key.' + sale,
    ticket: (sale) => 'taquilla.ticket.' + sale,
    admission: (sale) => 'taquilla.admission.' + sale,
    hold: (sale) => 'taquilla.hold.' + sale,
    order: (sale) => 'taquilla.order.' + sale,
    // The show's name, venue and time, and its section names by id, so the
    // page can describe the show and its seats after a reload. They stay
    // with the order when the fan leaves the queue.
    sale: (sale) => 'taquilla.sale.' + sale,
    sectionNames: (sale) => 'taquilla.section-names.' + sale,
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
  // last order, and the show and section names that describe it, stay, so
  // the fan can still see it.
  function forgetQueue(sale) {
    [keys.ticket, keys.joinKey, keys.admission, keys.hold].forEach((k) => store.del(k(sale)));
    if (getCurrent().sale === sale) store.del(keys.current);
  }

  // ---- Text and formats ----
  function t(key, vars) {
    const text = (dict[state.lang] || {})[key] || dict.en[key] || key;
    return text.replace(/\{(\w+)\}/g, (m, name) => (vars && name in vars ? String(vars[name]) : m));
  }

  // Returns the text for a count n from key + "One" or key + "Other", by the
  // plural rules of the page language. {n} in the text is the formatted count.
  function tn(key, n) {
    const form = new Intl.PluralRules(state.lang).select(n) === 'one' ? 'One' : 'Other';
    return t(key + form, { n: fmt.number(n) });
  }

  const fmt = {
    number: (n) => new Intl.NumberFormat(state.lang).format(n || 0),
    money: (cents) => new Intl.NumberFormat(state.lang, { style: 'currency', currency: 'EUR' }).format((cents || 0) / 100),
    // Formats a time in the venue's time zone and names the zone, because a
    // fan abroad would otherwise read a show's start in their own time.
    venueTime(iso) {
      const d = new Date(iso);
      if (isNaN(d)) return '';
      const options = { dateStyle: 'full', timeStyle: 'short', timeZone: VENUE_TIME_ZONE };
      return t('venueTime', { time: new Intl.DateTimeFormat(state.lang, options).format(d) });
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

  // Screen readers hear the text once. It is cleared when the screen changes,
  // so that no hidden copy of an old message stays in the page.
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
    // A rejected ticket or admission token cannot recover. Start over.
    if (err.code === 'unauthorized' && state.saleId) {
      stopLive();
      forgetQueue(state.saleId);
      goToSales();
    }
    showError(err);
  }

  // ---- Views ----
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Shows a screen. A new screen starts without the notice, announcement and
  // countdowns of the last one, so callers set a notice after show().
  function show(view) {
    const changed = state.view !== view;
    const first = state.view === '';
    state.view = view;
    if (changed) {
      clearNotice();
      announce('');
      document.querySelectorAll('[role="timer"]').forEach((timer) => { timer.textContent = ''; });
    }
    VIEWS.forEach((v) => { $('view-' + v).hidden = v !== view; });
    clearInterval(state.salesTimer);
    if (view === 'sales') state.salesTimer = setInterval(loadSales, SALES_REFRESH_MS);
    renderView();
    // Move focus to the new heading so screen readers follow the change.
    if (changed && !first) $('view-' + view).querySelector('h1').focus();
  }

  function renderView() {
    const render = { sales: renderSales, check: renderCheck, wait: renderWait, store: renderStore, hold: renderCart, pay: renderCart, order: renderOrder }[state.view];
    if (render) render();
    renderShowInfo();
    tick();
  }

  // Returns the name, venue, city and start of a sale: from the show list,
  // else from the seat map, else as saved by rememberSale. Returns null when
  // none of them has it.
  function findSale(id) {
    if (!id) return null;
    const listed = state.sales.find((s) => s.id === id);
    if (listed) return listed;
    const mapSale = state.seatmap && state.seatmap.sale;
    if (mapSale && mapSale.id === id) return mapSale;
    const saved = store.getJSON(keys.sale(id));
    return saved && saved.id === id ? saved : null;
  }

  function rememberSale(sale) {
    if (!sale || !sale.id) return;
    const { id, name, venue, city, starts_at } = sale;
    store.set(keys.sale(id), JSON.stringify({ id, name, venue, city, starts_at }));
  }

  // Fills the summary at the top of each screen of a sale, which tells the
  // fan which show this is: name, start in the venue's time, venue and city.
  function renderShowInfo() {
    const view = $('view-' + state.view);
    const box = view && view.querySelector('[data-show-info]');
    if (!box) return;
    const saleId = (state.view === 'order' && state.order && state.order.sale_id) || state.saleId;
    const sale = findSale(saleId);
    box.hidden = !sale;
    if (!sale) {
      box.replaceChildren();
      return;
    }
    box.replaceChildren(
      el('p', 'show-name', sale.name || sale.id),
      el('p', 'show-when', fmt.venueTime(sale.starts_at)),
      el('p', 'show-where', [sale.venue, sale.city].filter(Boolean).join(' · ')),
    );
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
      if (state.saleId) rememberSale(state.sales.find((s) => s.id === state.saleId));
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
    let status = tn('waitingCount', q.waiting || 0);
    if (closed) status = q.closed_reason === 'sold_out' ? t('soldOut') : t('saleClosed');
    else if (q.paused) status = t('salePaused');

    item.append(
      title,
      el('p', 'muted', [sale.venue, sale.city].filter(Boolean).join(' · ')),
      el('p', null, fmt.venueTime(sale.starts_at)),
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
      const listed = findSale(sale);
      const identity = identityStore.get();
      // Save the fan a proof of work that the server would reject.
      if (!identity && listed && listed.queue && listed.queue.identity_required) {
        throw new ApiError('identity', '', 401, 'errIdentityRequired');
      }
      state.saleId = sale;
      rememberSale(listed);
      show('check');
      try {
        const res = await joinWithProof(sale, store.get(keys.ticket(sale)), identity);
        store.set(keys.ticket(sale), res.ticket);
        enterQueue(sale, res.ticket, res.status);
      } catch (err) {
        goToSales();
        if (isIdentityError(err)) throw identityError(err);
        if (isCodeError(err)) throw codeError(err);
        // A stored ticket that the server rejects is dropped, so the next
        // join gets a new place instead of failing again.
        if (err.code === 'unauthorized') forgetQueue(sale);
        throw err;
      }
    });
  }

  // Access code errors are a 404 (no such code) or a 409 (no uses left)
  // whose message names the access code.
  function isCodeError(err) {
    return (err.code === 'not_found' || err.code === 'conflict') && /access code/.test(err.message || '');
  }

  function codeError(err) {
    return new ApiError('code', err.message, err.status, err.code === 'conflict' ? 'errCodeUsed' : 'errCodeUnknown');
  }

  // Identity errors are 401s whose message starts with "identity". The fan
  // keeps any place they hold, because the ticket was not what failed.
  function isIdentityError(err) {
    return err.code === 'unauthorized' && /^identity\b/.test(err.message || '');
  }

  // identityError returns the localized error for an identity rejection and
  // drops an identity that the server found invalid or expired, so that the
  // fan signs in with the promoter again. Its code is "identity", so that
  // handleError does not treat it as a rejected ticket.
  function identityError(err) {
    if (/^identity required\b/.test(err.message)) return new ApiError('identity', err.message, err.status, 'errIdentityRequired');
    identityStore.del();
    return new ApiError('identity', err.message, err.status, 'errIdentityInvalid');
  }

  async function joinWithProof(sale, ticket, identity) {
    for (let attempt = 1; attempt <= POW_ATTEMPTS; attempt++) {
      const challenge = await api('GET', saleURL(sale, 'challenge'));
      const nonce = await solveChallenge(challenge);
      if (nonce === null) continue; // the challenge expired first: get a new one
      const body = { challenge: challenge.challenge, nonce };
      if (ticket) body.ticket = ticket;
      if (identity) body.identity = identity;
      const code = $('access-code').value.trim();
      if (code && !ticket) body.code = code;
      return api('POST', saleURL(sale, 'join'), { body, idempotencyKey: joinKeyFor(sale) });
    }
    throw new ApiError('pow_timeout', '', 0, 'errCheckTimeout');
  }

  // Resolves to the nonce, or to null when the challenge expires first.
  function solveChallenge(challenge) {
    const difficulty = Math.max(0, Math.floor(Number(challenge.difficulty) || 0));
    if (difficulty === 0) return Promise.resolve('0');
    // The bar has no value until the first report, then fills toward the
    // expected number of tries.
    const expected = 2 ** difficulty;
    state.check = { progress: null, line: 'checkStarting' };
    renderCheck();
    const onProgress = (tried) => {
      state.check.progress = Math.min(POW_PROGRESS_CAP, tried / expected);
      renderCheck();
    };
    const expires = Date.parse(challenge.expires_at);
    const budget = Number.isFinite(expires) ? Math.min(POW_MAX_BUDGET_MS, Math.max(5000, expires - Date.now() - 2000)) : POW_MAX_BUDGET_MS;

    return new Promise((resolve) => {
      let job = null;
      let timer = 0;
      const slowTimer = setTimeout(() => {
        state.check.line = 'checkSlow';
        renderCheck();
      }, POW_SLOW_MS);
      const finish = (nonce) => {
        clearTimeout(timer);
        clearTimeout(slowTimer);
        if (job) job.stop();
        if (nonce !== null) {
          state.check = { progress: 1, line: 'checkDone' };
          renderCheck();
        }
        resolve(nonce);
      };
      job = runPow(challenge.challenge, difficulty, POW_CHUNK, onProgress, finish);
      timer = setTimeout(() => finish(null), budget);
    });
  }

  function renderCheck() {
    const check = state.check || { progress: null, line: 'checkStarting' };
    const bar = $('check-progress');
    if (check.progress === null) bar.removeAttribute('value');
    else bar.value = check.progress;
    $('check-line').textContent = t(check.line);
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
    goToSales();
    notify('info', messageKey);
  }

  function onAdmitted(s) {
    if (s.admission && s.admission.token) store.set(keys.admission(state.saleId), JSON.stringify(s.admission));
    if (!admissionFor(state.saleId)) {
      notify('error', 'errNoAdmission');
      return;
    }
    stopLive();
    openStore();
    // The notice is visible and, as an alert, also read out.
    if (state.view === 'store') notify('info', 'msgAdmitted');
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
    const closed = Boolean(s && s.state === 'closed');
    const pre = Boolean(s && s.state === 'prequeue');
    $('wait-label').textContent = pre ? t('opensIn') : t('yourPosition');
    $('wait-prequeue').hidden = !pre;
    if (pre) {
      renderCountdown();
      $('wait-ahead').textContent = tn('preQueued', s.pre_queued || 0);
      $('wait-estimate').textContent = t('opensAt', { time: fmt.venueTime(s.opens_at) });
    } else {
      $('wait-position').textContent = s && s.position > 0 ? fmt.number(s.position) : '—';
      $('wait-ahead').textContent = s ? tn('ahead', s.ahead || 0) : t('connecting');
      $('wait-estimate').textContent = s && !closed ? estimateText(s) : '';
    }
    renderLikely(s);

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

  // Shows the time left until a scheduled opening; the tick calls it every
  // second. At zero the fan waits for the opening's status push.
  function renderCountdown() {
    const s = state.status;
    if (!s || s.state !== 'prequeue') return;
    const left = Date.parse(s.opens_at) - Date.now();
    if (!Number.isFinite(left)) {
      $('wait-position').textContent = '—';
    } else if (left >= 86400000) {
      $('wait-position').textContent = tn('days', Math.floor(left / 86400000));
    } else if (left >= 3600000) {
      const h = Math.floor(left / 3600000);
      $('wait-position').textContent = h + ':' + fmt.clock(left - h * 3600000).padStart(5, '0');
    } else {
      $('wait-position').textContent = fmt.clock(left);
    }
  }

  // Tells a fan whose turn will likely come after the show sells out, and
  // lists the other shows that still have places, with a button to queue.
  function renderLikely(s) {
    const likely = Boolean(s && s.state === 'waiting' && s.likely_sold_out);
    $('wait-likely').hidden = !likely;
    if (!likely) {
      $('wait-alternatives').replaceChildren();
      return;
    }
    const items = (s.alternatives || []).slice(0, 4).map((alt) => {
      const item = el('li', null, t('alternative', { name: alt.name || alt.sale, n: fmt.number(alt.available) }) + ' ');
      const go = el('button', 'btn btn-small', t('joinThisQueue'));
      go.type = 'button';
      go.addEventListener('click', () => { stopLive(); startJoin(alt.sale); });
      item.append(go);
      return item;
    });
    $('wait-alternatives').replaceChildren(...items);
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
      goToSales();
      notify('error', 'msgAdmissionExpired');
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
    const sale = state.saleId;
    const seatmap = await api('GET', saleURL(sale, 'seatmap'), { bearer: state.admission.token });
    if (sale !== state.saleId) return; // the fan moved to another sale meanwhile
    state.seatmap = seatmap;
    state.seatmapSale = sale;
    rememberSale(seatmap.sale);
    const sections = seatmap.sections || [];
    const names = {};
    sections.forEach((s) => { names[s.id] = s.name; });
    store.set(keys.sectionNames(sale), JSON.stringify(names));
    const picked = sections.find((s) => s.id === state.section);
    if (!picked || picked.available <= 0) state.section = '';
  }

  // Returns the seat map of the current sale, or null before it has loaded.
  function currentSeatmap() {
    return state.seatmap && state.seatmapSale === state.saleId ? state.seatmap : null;
  }

  // Sorts by rank (closeness to the stage), then by name with numbers in
  // names compared by value, so that "Grada alta 9" comes before "Grada alta 10".
  function sortedSections() {
    const seatmap = currentSeatmap();
    const sections = (seatmap && seatmap.sections) || [];
    const collator = new Intl.Collator(state.lang, { numeric: true });
    const rank = (s) => Number(s.rank) || 0;
    return sections.slice().sort((a, b) => rank(a) - rank(b) || collator.compare(String(a.name), String(b.name)) || collator.compare(a.id, b.id));
  }

  function tierPrice(tierId) {
    const seatmap = currentSeatmap();
    const tier = ((seatmap && seatmap.tiers) || []).find((x) => x.id === tierId);
    return tier ? tier.price_cents : null;
  }

  // Returns a section's name from the seat map, or as saved when the seat map
  // last loaded, so seats read the same after a reload. Falls back to the id.
  function sectionName(id) {
    const seatmap = currentSeatmap();
    const section = ((seatmap && seatmap.sections) || []).find((s) => s.id === id);
    if (section) return section.name;
    const saved = store.getJSON(keys.sectionNames(state.saleId));
    if (saved && Object.hasOwn(saved, id) && typeof saved[id] === 'string' && saved[id]) return saved[id];
    return id;
  }

  function renderStore() {
    $('store-loading').hidden = Boolean(currentSeatmap());
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
      el('span', 'section-avail', section.available > 0 ? tn('availableCount', section.available) : t('soldOut')),
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
    show('store');
    if (messageKey) notify('error', messageKey);
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
    if (state.view === 'wait') renderCountdown();
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

  // Renders the order as a receipt: the show (by renderShowInfo), the order
  // id and time, each seat with its section name, and the total.
  function renderOrder() {
    const order = state.order;
    if (!order) return;
    $('order-id').textContent = order.id;
    const created = fmt.venueTime(order.created_at);
    $('order-date').textContent = created;
    $('order-date-row').hidden = !created;
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

  takeIdentityFromURL();
  state.lang = initialLang();
  applyStaticText();
  bindEvents();
  resume();
  if (state.view !== 'sales') loadSales(); // show names in the queue and store views
})();
