import { describe, expect, it } from "vitest";

import { Downsampler, encodePcm16, Framer, frameSize, meterPercent, PcmEncoder, rmsDb, targetRate } from "./pcm";

function tone(freq: number, rate: number, seconds: number, amplitude = 0.5): Float32Array {
  const out = new Float32Array(Math.round(rate * seconds));
  for (let i = 0; i < out.length; i++) out[i] = amplitude * Math.sin((2 * Math.PI * freq * i) / rate);
  return out;
}

/** Feeds `input` in chunks of `chunk` samples (an AudioWorklet posts 128 at a time). */
function streamed(d: Downsampler, input: Float32Array, chunk: number): Float32Array {
  const parts: number[] = [];
  for (let at = 0; at < input.length; at += chunk) parts.push(...d.process(input.subarray(at, at + chunk)));
  return Float32Array.from(parts);
}

function rms(samples: Float32Array): number {
  let sum = 0;
  for (const s of samples) sum += s * s;
  return Math.sqrt(sum / samples.length);
}

describe("targetRate", () => {
  it("sends 16 kHz from the usual capture rates, and a lower capture rate as it is", () => {
    expect(targetRate(48_000)).toBe(16_000);
    expect(targetRate(44_100)).toBe(16_000);
    expect(targetRate(96_000)).toBe(16_000);
    expect(targetRate(16_000)).toBe(16_000);
    expect(targetRate(8_000)).toBe(8_000);
  });

  it("refuses a rate the protocol cannot take", () => {
    expect(() => targetRate(4_000)).toThrow(/below 8000/);
    expect(() => targetRate(Number.NaN)).toThrow(RangeError);
  });
});

describe("encodePcm16", () => {
  it("scales to 16 bits little-endian and clips what is out of range", () => {
    const bytes = encodePcm16(Float32Array.from([0, 1, -1, 0.5, 2, -2, Number.NaN, -0.25]));
    const view = new DataView(bytes);
    const values = Array.from({ length: 8 }, (_, i) => view.getInt16(i * 2, true));
    expect(values).toEqual([0, 32767, -32768, 16384, 32767, -32768, 0, -8192]);
    expect(new Uint8Array(bytes).slice(2, 4)).toEqual(Uint8Array.from([0xff, 0x7f])); // low byte first
  });
});

describe("Framer", () => {
  it("cuts whatever arrives into fixed frames and keeps the order", () => {
    const framer = new Framer(100);
    const input = Float32Array.from({ length: 310 }, (_, i) => i);
    const frames = [...framer.push(input.subarray(0, 30)), ...framer.push(input.subarray(30, 250)), ...framer.push(input.subarray(250))];
    expect(frames.map((f) => f.length)).toEqual([100, 100, 100]);
    const rest = framer.flush();
    expect(rest && Array.from(rest)).toEqual([300, 301, 302, 303, 304, 305, 306, 307, 308, 309]);
    expect(frames.flatMap((f) => Array.from(f))).toEqual(Array.from(input.subarray(0, 300)));
    expect(framer.flush()).toBeNull();
  });

  it("hands out frames that later pushes do not overwrite", () => {
    const framer = new Framer(2);
    const [first] = framer.push(Float32Array.from([1, 2]));
    framer.push(Float32Array.from([3, 4]));
    expect(first && Array.from(first)).toEqual([1, 2]);
  });

  it("sizes 100 ms frames", () => {
    expect(frameSize(16_000, 100)).toBe(1600);
    expect(frameSize(8_000, 100)).toBe(800);
  });
});

describe("Downsampler", () => {
  it("passes a speech-band tone through at the new rate, in phase", () => {
    const out = streamed(new Downsampler(48_000, 16_000), tone(1000, 48_000, 0.5), 128);
    expect(Math.abs(out.length - 8000)).toBeLessThanOrEqual(20);
    const expected = tone(1000, 16_000, out.length / 16_000);
    // Away from the very start (no history there), sample k is the tone at k / 16 kHz.
    let worst = 0;
    for (let k = 100; k < out.length; k++) worst = Math.max(worst, Math.abs((out[k] ?? 0) - (expected[k] ?? 0)));
    expect(worst).toBeLessThan(0.01);
  });

  it("removes what lies above the new Nyquist frequency instead of folding it back", () => {
    // 12 kHz at 48 kHz would alias to 4 kHz at 16 kHz without the low-pass.
    const out = streamed(new Downsampler(48_000, 16_000), tone(12_000, 48_000, 0.5), 128);
    const attenuationDb = 20 * Math.log10(rms(out.subarray(100)) / rms(tone(12_000, 48_000, 0.5)));
    expect(attenuationDb).toBeLessThan(-50);
  });

  it("handles a fractional ratio (44.1 kHz)", () => {
    const out = streamed(new Downsampler(44_100, 16_000), tone(440, 44_100, 1), 128);
    expect(Math.abs(out.length - 16_000)).toBeLessThanOrEqual(20);
    const expected = tone(440, 16_000, out.length / 16_000);
    let worst = 0;
    for (let k = 100; k < out.length; k++) worst = Math.max(worst, Math.abs((out[k] ?? 0) - (expected[k] ?? 0)));
    expect(worst).toBeLessThan(0.01);
  });

  it("gives the same samples however the input is chunked", () => {
    const input = tone(700, 48_000, 0.2);
    const whole = new Downsampler(48_000, 16_000).process(input);
    const chunked = streamed(new Downsampler(48_000, 16_000), input, 37);
    expect(chunked.length).toBe(whole.length);
    for (let i = 0; i < whole.length; i++) expect(chunked[i]).toBeCloseTo(whole[i] ?? 0, 6);
  });

  it("keeps DC exact and passes equal rates through unchanged", () => {
    const out = new Downsampler(48_000, 16_000).process(new Float32Array(4800).fill(0.25));
    for (const s of out) expect(s).toBeCloseTo(0.25, 6);
    const same = Float32Array.from([0.1, -0.2, 0.3]);
    expect(Array.from(new Downsampler(16_000, 16_000).process(same))).toEqual(Array.from(same));
  });

  it("refuses to upsample", () => {
    expect(() => new Downsampler(8_000, 16_000)).toThrow(RangeError);
  });
});

describe("levels", () => {
  it("measures RMS in dBFS and maps it onto a meter", () => {
    expect(rmsDb(new Float32Array(100))).toBe(-Infinity);
    expect(rmsDb(new Float32Array(100).fill(1))).toBeCloseTo(0, 6);
    expect(rmsDb(new Float32Array(100).fill(0.1))).toBeCloseTo(-20, 4);
    expect(meterPercent(-Infinity)).toBe(0);
    expect(meterPercent(-60)).toBe(0);
    expect(meterPercent(-30)).toBeCloseTo(50, 6);
    expect(meterPercent(0)).toBe(100);
    expect(meterPercent(6)).toBe(100);
  });
});

describe("PcmEncoder", () => {
  it("turns 48 kHz worklet chunks into 100 ms pcm_s16le frames at 16 kHz", () => {
    const encoder = new PcmEncoder(48_000);
    expect(encoder.sampleRate).toBe(16_000);
    const input = tone(300, 48_000, 1);
    const frames: ArrayBuffer[] = [];
    for (let at = 0; at < input.length; at += 128) frames.push(...encoder.push(input.subarray(at, at + 128)));
    expect(frames.length).toBe(9);
    for (const f of frames) expect(f.byteLength).toBe(3200);
    const last = encoder.flush();
    expect(last).not.toBeNull();
    const total = frames.reduce((n, f) => n + f.byteLength, 0) + (last?.byteLength ?? 0);
    expect(Math.abs(total / 2 - 16_000)).toBeLessThanOrEqual(20); // only the ~1 ms look-ahead is missing
    expect(encoder.flush()).toBeNull();
  });
});
