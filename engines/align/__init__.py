"""wav2vec2 CTC forced alignment engine (needs weights: DALSTON_ALIGN_MODEL)."""
