// Microphone audio -> the native realtime protocol's pcm_s16le frames
// (shared/realtime/protocol.py SessionParams: encoding pcm_s16le, sample_rate 8000-48000).
//
// The browser captures at its AudioContext's rate (usually 44.1 or 48 kHz). The worker
// decodes to 16 kHz anyway, so the page sends 16 kHz: a third of the bytes at 48 kHz.
// Downsampling needs a low-pass first, or everything between 8 kHz and the capture
// rate's Nyquist folds back into the speech band as noise.

/** The rate the page sends: 16 kHz, or the capture rate itself when that is lower. */
export const TARGET_RATE = 16_000;
export const MIN_RATE = 8_000;

export function targetRate(captureRate: number): number {
  if (!Number.isFinite(captureRate) || captureRate < MIN_RATE) {
    throw new RangeError(`the microphone's sample rate (${captureRate} Hz) is below ${MIN_RATE} Hz`);
  }
  return Math.min(TARGET_RATE, Math.round(captureRate));
}

/** Blackman window over |x| <= 1. */
function blackman(x: number): number {
  const t = Math.PI * (x + 1); // 0..2π across the window
  return 0.42 - 0.5 * Math.cos(t) + 0.08 * Math.cos(2 * t);
}

function sinc(x: number): number {
  if (x === 0) return 1;
  const px = Math.PI * x;
  return Math.sin(px) / px;
}

/**
 * Streaming downsampler: a Blackman-windowed sinc low-pass evaluated at each output
 * sample's (fractional) position in the input, so any ratio works (48k, 44.1k -> 16k).
 * The filter state carries over between `process` calls: chunk boundaries are seamless.
 */
export class Downsampler {
  readonly inRate: number;
  readonly outRate: number;
  private readonly step: number; // input samples per output sample (>= 1)
  private readonly cutoff: number; // cycles per input sample
  private readonly half: number; // kernel half-width in input samples
  private pending: Float32Array = new Float32Array(0); // input not yet behind every kernel
  private pos = 0; // the next output sample's position within `pending`

  /** `zeroCrossings`: the kernel's half-width in output samples; more means a steeper filter. */
  constructor(inRate: number, outRate: number, zeroCrossings = 16) {
    if (!(outRate > 0) || !(inRate >= outRate)) throw new RangeError(`cannot downsample ${inRate} Hz to ${outRate} Hz`);
    this.inRate = inRate;
    this.outRate = outRate;
    this.step = inRate / outRate;
    // 85% of the output's Nyquist: the window's transition band ends near it.
    this.cutoff = (0.5 / this.step) * 0.85;
    this.half = Math.ceil(zeroCrossings * this.step);
  }

  /** Output samples for the next chunk of input (possibly none yet: the kernel looks ahead). */
  process(input: Float32Array): Float32Array {
    if (this.step === 1) return input.slice();
    const buf = new Float32Array(this.pending.length + input.length);
    buf.set(this.pending);
    buf.set(input, this.pending.length);
    // Only whole kernels: an output waits until the input reaches `half` past it. Before
    // the very first sample there is no history; the weights are normalised in `sample`.
    const out: number[] = [];
    let pos = this.pos;
    while (pos + this.half < buf.length) {
      out.push(this.sample(buf, pos));
      pos += this.step;
    }
    this.pos = pos;
    // Keep what the next outputs' kernels still reach.
    const keepFrom = Math.max(0, Math.floor(pos) - this.half);
    this.pending = buf.slice(keepFrom);
    this.pos -= keepFrom;
    return Float32Array.from(out);
  }

  /** The filtered value at fractional position `at` of `buf`. */
  private sample(buf: Float32Array, at: number): number {
    const lo = Math.max(0, Math.ceil(at - this.half));
    const hi = Math.min(buf.length - 1, Math.floor(at + this.half));
    const twoFc = 2 * this.cutoff;
    let sum = 0;
    let weights = 0;
    for (let n = lo; n <= hi; n++) {
      const d = n - at;
      const w = twoFc * sinc(twoFc * d) * blackman(d / this.half);
      sum += (buf[n] ?? 0) * w;
      weights += w;
    }
    // Normalising keeps DC exact whatever the fractional position.
    return weights > 0 ? sum / weights : 0;
  }
}

/** Float samples in [-1, 1] as 16-bit little-endian PCM; out-of-range values are clipped. */
export function encodePcm16(samples: Float32Array): ArrayBuffer {
  const out = new ArrayBuffer(samples.length * 2);
  const view = new DataView(out);
  for (let i = 0; i < samples.length; i++) {
    const s = samples[i] ?? 0;
    const clamped = Number.isNaN(s) ? 0 : Math.max(-1, Math.min(1, s));
    view.setInt16(i * 2, Math.round(clamped < 0 ? clamped * 0x8000 : clamped * 0x7fff), true);
  }
  return out;
}

/** Collects samples into fixed-size frames (e.g. 100 ms), whatever sizes arrive. */
export class Framer {
  readonly frameSamples: number;
  private buffer: Float32Array;
  private filled = 0;

  constructor(frameSamples: number) {
    if (!Number.isInteger(frameSamples) || frameSamples <= 0) throw new RangeError(`bad frame size ${frameSamples}`);
    this.frameSamples = frameSamples;
    this.buffer = new Float32Array(frameSamples);
  }

  /** The frames completed by `samples` (each a new array). */
  push(samples: Float32Array): Float32Array[] {
    const frames: Float32Array[] = [];
    let at = 0;
    while (at < samples.length) {
      const take = Math.min(this.frameSamples - this.filled, samples.length - at);
      this.buffer.set(samples.subarray(at, at + take), this.filled);
      this.filled += take;
      at += take;
      if (this.filled === this.frameSamples) {
        frames.push(this.buffer);
        this.buffer = new Float32Array(this.frameSamples);
        this.filled = 0;
      }
    }
    return frames;
  }

  /** What is left (a short last frame), or null; the framer is then empty. */
  flush(): Float32Array | null {
    if (this.filled === 0) return null;
    const rest = this.buffer.slice(0, this.filled);
    this.filled = 0;
    return rest;
  }
}

/** Samples per frame of `ms` milliseconds at `rate`. */
export function frameSize(rate: number, ms: number): number {
  return Math.max(1, Math.round((rate * ms) / 1000));
}

/** RMS level in dBFS (-Infinity for silence). */
export function rmsDb(samples: Float32Array): number {
  if (samples.length === 0) return -Infinity;
  let sum = 0;
  for (const s of samples) sum += s * s;
  const rms = Math.sqrt(sum / samples.length);
  return rms > 0 ? 20 * Math.log10(rms) : -Infinity;
}

/** A dBFS level as a 0-100 meter position: `floorDb` and below is empty, 0 dBFS is full. */
export function meterPercent(db: number, floorDb = -60): number {
  if (!(db > floorDb)) return 0;
  return Math.min(100, ((db - floorDb) / -floorDb) * 100);
}

/**
 * The whole chain for one capture: float chunks at `captureRate` in, pcm_s16le frames of
 * `frameMs` at `targetRate(captureRate)` out.
 */
export class PcmEncoder {
  readonly sampleRate: number;
  private readonly downsampler: Downsampler;
  private readonly framer: Framer;

  constructor(captureRate: number, frameMs = 100) {
    this.sampleRate = targetRate(captureRate);
    this.downsampler = new Downsampler(captureRate, this.sampleRate);
    this.framer = new Framer(frameSize(this.sampleRate, frameMs));
  }

  push(chunk: Float32Array): ArrayBuffer[] {
    return this.framer.push(this.downsampler.process(chunk)).map(encodePcm16);
  }

  /** The last short frame (the downsampler's look-ahead, about 1 ms, is dropped). */
  flush(): ArrayBuffer | null {
    const rest = this.framer.flush();
    return rest ? encodePcm16(rest) : null;
  }
}
