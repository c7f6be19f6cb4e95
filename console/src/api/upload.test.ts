import { afterEach, describe, expect, it } from "vitest";

import { buildTranscriptionForm } from "../lib/submission";
import { ApiError, CSRF_HEADER, setCsrfToken } from "./client";
import { upload } from "./upload";

class FakeXhr {
  method = "";
  url = "";
  withCredentials = false;
  headers: Record<string, string> = {};
  status = 0;
  responseText = "";
  body: unknown = null;
  upload: { onprogress: ((e: ProgressEvent) => void) | null } = { onprogress: null };
  onload: (() => void) | null = null;
  onerror: (() => void) | null = null;
  onabort: (() => void) | null = null;
  aborted = false;

  open(method: string, url: string) {
    this.method = method;
    this.url = url;
  }
  setRequestHeader(name: string, value: string) {
    this.headers[name] = value;
  }
  send(body: unknown) {
    this.body = body;
  }
  abort() {
    this.aborted = true;
    this.onabort?.();
  }
  progress(loaded: number, total: number) {
    this.upload.onprogress?.({ loaded, total, lengthComputable: true } as ProgressEvent);
  }
  respond(status: number, body: unknown) {
    this.status = status;
    this.responseText = JSON.stringify(body);
    this.onload?.();
  }
}

afterEach(() => setCsrfToken(null));

describe("upload", () => {
  it("posts with the CSRF header and reports progress", async () => {
    setCsrfToken("tok-up");
    const xhr = new FakeXhr();
    const seen: number[] = [];
    const form = new FormData();
    const done = upload<{ id: string }>("/v1/audio/transcriptions", form, {
      xhrFactory: () => xhr as unknown as XMLHttpRequest,
      onProgress: (p) => seen.push(p.loaded / (p.total ?? 1)),
    });
    expect(xhr.method).toBe("POST");
    expect(xhr.headers[CSRF_HEADER]).toBe("tok-up");
    expect(xhr.body).toBe(form);
    xhr.progress(50, 100);
    xhr.progress(100, 100);
    xhr.respond(201, { id: "job-1" });
    await expect(done).resolves.toEqual({ id: "job-1" });
    expect(seen).toEqual([0.5, 1]);
  });

  it("rejects with the gateway's error", async () => {
    const xhr = new FakeXhr();
    const done = upload("/v1/audio/transcriptions", new FormData(), { xhrFactory: () => xhr as unknown as XMLHttpRequest });
    xhr.respond(400, { error: { code: "invalid_audio", message: "the file contains no decodable audio" } });
    const err = (await done.catch((e: unknown) => e)) as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect(err.code).toBe("invalid_audio");
    expect(err.message).toBe("the file contains no decodable audio");
  });

  it("rejects a network failure in plain words", async () => {
    const xhr = new FakeXhr();
    const done = upload("/v1/audio/transcriptions", new FormData(), { xhrFactory: () => xhr as unknown as XMLHttpRequest });
    xhr.onerror?.();
    await expect(done).rejects.toMatchObject({ code: "network_error" });
  });

  it("can be cancelled", async () => {
    const xhr = new FakeXhr();
    const controller = new AbortController();
    const done = upload("/v1/audio/transcriptions", new FormData(), { xhrFactory: () => xhr as unknown as XMLHttpRequest, signal: controller.signal });
    controller.abort();
    await expect(done).rejects.toMatchObject({ name: "AbortError" });
    expect(xhr.aborted).toBe(true);
  });
});

describe("buildTranscriptionForm", () => {
  const file = new File(["RIFF"], "speech.wav", { type: "audio/wav" });

  it("leaves server defaults out", () => {
    const form = buildTranscriptionForm(file, { model: "", language: " ", speakerDetection: "none", numSpeakers: null, minSpeakers: null, maxSpeakers: null });
    expect(form.get("model")).toBeNull();
    expect(form.get("language")).toBeNull();
    expect(form.get("speaker_detection")).toBe("none");
    expect((form.get("file") as File).name).toBe("speech.wav");
  });

  it("sends speaker counts only for diarize, num_speakers over a range", () => {
    const a = buildTranscriptionForm(file, { model: "base", language: "DE", speakerDetection: "diarize", numSpeakers: 2, minSpeakers: 1, maxSpeakers: 3 });
    expect(a.get("model")).toBe("base");
    expect(a.get("language")).toBe("de");
    expect(a.get("num_speakers")).toBe("2");
    expect(a.get("min_speakers")).toBeNull();
    const b = buildTranscriptionForm(file, { model: "", language: "", speakerDetection: "diarize", numSpeakers: null, minSpeakers: 1, maxSpeakers: 3 });
    expect(b.get("min_speakers")).toBe("1");
    expect(b.get("max_speakers")).toBe("3");
    const c = buildTranscriptionForm(file, { model: "", language: "", speakerDetection: "per_channel", numSpeakers: 2, minSpeakers: null, maxSpeakers: null });
    expect(c.get("num_speakers")).toBeNull();
  });
});
