"""Entity detection shared by the pii-presidio engine and the realtime edges. Importing it
never pulls presidio or spaCy: `Detector.load()` does (the `pii` extra)."""
