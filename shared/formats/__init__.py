"""External formats of the canonical transcript, each a pure function of `Transcript`."""
