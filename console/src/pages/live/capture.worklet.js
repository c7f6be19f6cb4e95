// AudioWorklet processor for the live page: the microphone's samples, mixed to mono, posted
// to the main thread in chunks of CHUNK (the render quantum is 128 samples: posting each
// would mean ~375 messages a second). Resampling and encoding happen on the main thread
// (src/lib/pcm.ts), where they are unit-tested. Plain JavaScript: Vite serves this file
// as it is (imported with `?url`), and a worklet cannot load the app's modules.

const CHUNK = 1024;

class PcmCaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.buffer = new Float32Array(CHUNK);
    this.filled = 0;
  }

  process(inputs) {
    const channels = inputs[0];
    if (!channels || channels.length === 0) return true; // no input connected (yet)
    const frames = channels[0].length;
    for (let i = 0; i < frames; i++) {
      let sum = 0;
      for (let c = 0; c < channels.length; c++) sum += channels[c][i];
      this.buffer[this.filled++] = sum / channels.length;
      if (this.filled === CHUNK) {
        this.port.postMessage(this.buffer, [this.buffer.buffer]);
        this.buffer = new Float32Array(CHUNK);
        this.filled = 0;
      }
    }
    return true;
  }
}

registerProcessor("pcm-capture", PcmCaptureProcessor);
