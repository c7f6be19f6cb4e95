"""The audio events Dalston reports, and the AudioSet classes each one gathers.

An AudioSet tagger (panns-events) scores 527 classes, most of them speech, room acoustics or
sounds nobody wants in a transcript. Reported are the non-speech events people tag in
transcripts ("(laughter)", "(applause)"), each the maximum over a few related AudioSet classes
(laughter = Laughter, Giggle, Belly laugh, ...). Classes are named by their AudioSet ids (mids),
which, unlike display names, are the same in every copy of the label file.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EventType:
    id: str
    mids: tuple[str, ...]  # AudioSet class ids, e.g. "/m/01j3sz" (Laughter)

    @property
    def tag(self) -> str:
        """How a transcript shows it: "(laughter)", as ElevenLabs' `audio_event` words do."""
        return f"({self.id.replace('_', ' ')})"


EVENT_TYPES: dict[str, EventType] = {
    t.id: t
    for t in (
        # Laughter, Baby laughter, Giggle, Snicker, Belly laugh, Chuckle/chortle
        EventType("laughter", ("/m/01j3sz", "/t/dd00001", "/m/07r660_", "/m/07s04w4", "/m/07sq110", "/m/07rgt08")),
        EventType("applause", ("/m/028ght", "/m/0l15bq")),  # Applause, Clapping
        EventType("cheering", ("/m/053hz1",)),
        EventType("music", ("/m/04rlf",)),
        EventType("singing", ("/m/015lz1",)),
        EventType("crying", ("/m/0463cq4", "/t/dd00002")),  # Crying/sobbing, Baby cry
        EventType("sigh", ("/m/07plz5l",)),
        EventType("cough", ("/m/01b_21",)),
        EventType("throat_clearing", ("/m/0dl9sf8",)),
        EventType("sneeze", ("/m/01hsr_",)),
        EventType("whistling", ("/m/01w250",)),
        EventType("footsteps", ("/m/07pbtc8",)),  # Walk, footsteps
        EventType("knock", ("/m/07r4wb8",)),
        EventType("door", ("/m/02dgv", "/m/07rjzl8")),  # Door, Slam
        EventType("doorbell", ("/m/03wwcy", "/m/07r67yg")),  # Doorbell, Ding-dong
        EventType("phone_ringing", ("/m/07pp8cl", "/m/01hnzm")),  # Telephone bell ringing, Ringtone
        EventType("typing", ("/m/0316dw", "/m/01m2v")),  # Typing, Computer keyboard
        EventType("dog", ("/m/0bt9lr", "/m/05tny_")),  # Dog, Bark
        EventType("cat", ("/m/01yrx", "/m/07qrkrw")),  # Cat, Meow
        EventType("alarm", ("/m/07pp_mv",)),
        EventType("siren", ("/m/03kmc9",)),
    )
}
