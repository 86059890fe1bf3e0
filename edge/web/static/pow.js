// Taquilla fan page: the proof of work that a fan's browser solves before
// joining a queue. A plain script with no build step, loaded before app.js,
// which calls runPow.
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

// Nonces to try before giving up on a challenge. At the default difficulty of
// 14 bits a solution takes about 16,000 tries on average.
const POW_NONCE_LIMIT = 2 ** 32;

// Solves a challenge in a Web Worker built from the functions above, or on
// the page in small steps when workers are unavailable (for example when a
// Content-Security-Policy blocks blob: workers). It calls onProgress(tried)
// after every chunk of nonces and onDone(nonce) at the end, with null when
// POW_NONCE_LIMIT nonces found nothing. Returns a job whose stop() ends the
// search without calling onDone.
function runPow(challenge, difficulty, chunk, onProgress, onDone) {
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
    job.worker.postMessage({ challenge, difficulty, chunk, limit: POW_NONCE_LIMIT });
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
