// The microphone, as pcm_s16le frames: getUserMedia -> AudioWorklet (capture.worklet.js,
// mono Float32 chunks) -> src/lib/pcm.ts (low-pass, 16 kHz, int16, 100 ms frames).

import { PcmEncoder, rmsDb } from "../../lib/pcm";
// no-inline: a small asset would become a data: URL, which a worklet may not load.
import workletUrl from "./capture.worklet.js?url&no-inline";

export interface CaptureHandlers {
  /** A pcm_s16le frame at `sampleRate`, about 100 ms long. */
  onFrame: (frame: ArrayBuffer) => void;
  /** The level of the latest chunk, in dBFS. */
  onLevel: (db: number) => void;
}

// Mono. Echo cancellation keeps what the speakers play out of the transcript; gain control
// lifts a quiet microphone. Noise suppression stays off: speech models cope with noise
// better than with the suppressor's artefacts (the fixture scores the same either way).
const CONSTRAINTS: MediaTrackConstraints = { channelCount: 1, echoCancellation: true, noiseSuppression: false, autoGainControl: true };

/** Fetches the worklet into the HTTP cache ahead of Start, so Start opens the microphone at once. */
export function prefetchWorklet(): void {
  fetch(workletUrl, { credentials: "same-origin" }).catch(() => {});
}

export class MicrophoneUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MicrophoneUnavailable";
  }
}

export class MicrophoneCapture {
  /** The rate of the frames handed to `onFrame` (the session's `sample_rate`). */
  readonly sampleRate: number;
  private readonly context: AudioContext;
  private readonly stream: MediaStream;
  private readonly node: AudioWorkletNode;
  private readonly source: MediaStreamAudioSourceNode;
  private readonly encoder: PcmEncoder;
  private stopped = false;

  private constructor(context: AudioContext, stream: MediaStream, source: MediaStreamAudioSourceNode, node: AudioWorkletNode, handlers: CaptureHandlers) {
    this.context = context;
    this.stream = stream;
    this.source = source;
    this.node = node;
    this.encoder = new PcmEncoder(context.sampleRate);
    this.sampleRate = this.encoder.sampleRate;
    node.port.onmessage = (event: MessageEvent<Float32Array>) => {
      if (this.stopped) return;
      handlers.onLevel(rmsDb(event.data));
      for (const frame of this.encoder.push(event.data)) handlers.onFrame(frame);
    };
  }

  /**
   * Asks for the microphone and starts capturing. Call it from the click that starts the
   * session: the AudioContext is created before the first await, inside the user gesture,
   * so the browser's autoplay policy lets it run. Rejects with getUserMedia's DOMException
   * (NotAllowedError, NotFoundError, ...) or MicrophoneUnavailable.
   */
  static async start(handlers: CaptureHandlers): Promise<MicrophoneCapture> {
    if (!navigator.mediaDevices?.getUserMedia) {
      throw new MicrophoneUnavailable(
        window.isSecureContext
          ? "This browser cannot capture audio (no getUserMedia)."
          : "Browsers only allow the microphone on HTTPS pages or on http://localhost. Open the console over HTTPS, or through localhost (for example with an SSH tunnel).",
      );
    }
    if (typeof AudioWorkletNode === "undefined") throw new MicrophoneUnavailable("This browser lacks AudioWorklet, which live capture needs.");
    const context = new AudioContext();
    let stream: MediaStream | null = null;
    try {
      // The worklet first: samples the microphone delivers before the graph is connected
      // are lost, so the microphone opens only once the node can take them.
      await context.audioWorklet.addModule(workletUrl);
      stream = await navigator.mediaDevices.getUserMedia({ audio: CONSTRAINTS, video: false });
      const source = context.createMediaStreamSource(stream);
      const node = new AudioWorkletNode(context, "pcm-capture", { numberOfInputs: 1, numberOfOutputs: 1, channelCount: 1, channelCountMode: "explicit" });
      // A node is only pulled while it leads to the destination; a muted gain keeps the
      // microphone out of the speakers.
      const mute = context.createGain();
      mute.gain.value = 0;
      source.connect(node);
      node.connect(mute);
      mute.connect(context.destination);
      if (context.state !== "running") await context.resume();
      return new MicrophoneCapture(context, stream, source, node, handlers);
    } catch (err) {
      stream?.getTracks().forEach((t) => t.stop());
      void context.close();
      throw err;
    }
  }

  /** The track's device label ("Default", a headset's name), when the browser tells it. */
  get deviceLabel(): string {
    return this.stream.getAudioTracks()[0]?.label ?? "";
  }

  /** Stops the microphone; returns the last, short frame (or null). Idempotent. */
  stop(): ArrayBuffer | null {
    if (this.stopped) return null;
    this.stopped = true;
    this.node.port.onmessage = null;
    this.source.disconnect();
    this.node.disconnect();
    this.stream.getTracks().forEach((t) => t.stop());
    void this.context.close();
    return this.encoder.flush();
  }
}
