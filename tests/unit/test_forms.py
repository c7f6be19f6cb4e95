import pytest

from gateway.forms import FieldError, get_bool, get_float, get_int, get_json, get_list, get_str


def test_null_literals_are_absent() -> None:
    for raw in ("null", "NULL", "", "  ", '"null"'):
        assert get_str({"language_code": [raw]}, "language_code") is None


def test_json_encoded_and_double_encoded_strings() -> None:
    assert get_str({"model_id": ['"scribe_v1"']}, "model_id") == "scribe_v1"
    assert get_str({"model_id": ['"\\"scribe_v1\\""']}, "model_id") == "scribe_v1"


def test_case_insensitive_booleans() -> None:
    assert get_bool({"diarize": ["True"]}, "diarize") is True
    assert get_bool({"diarize": ["FALSE"]}, "diarize") is False
    assert get_bool({}, "diarize", default=False) is False
    with pytest.raises(FieldError):
        get_bool({"diarize": ["maybe"]}, "diarize")


def test_lists_in_every_encoding() -> None:
    assert get_list({"timestamp_granularities[]": ["word", "segment"]}, "timestamp_granularities") == ["word", "segment"]
    assert get_list({"timestamp_granularities": ["word"]}, "timestamp_granularities") == ["word"]
    assert get_list({"timestamp_granularities": ['["word","segment"]']}, "timestamp_granularities") == ["word", "segment"]
    assert get_list({"additional_formats": ['[{"format":"srt"}]']}, "additional_formats") == [{"format": "srt"}]


def test_numbers_with_ranges() -> None:
    assert get_float({"temperature": ["0.2"]}, "temperature", minimum=0, maximum=2) == 0.2
    assert get_int({"num_speakers": ["2"]}, "num_speakers", minimum=1, maximum=32) == 2
    with pytest.raises(FieldError):
        get_int({"num_speakers": ["2.5"]}, "num_speakers")
    with pytest.raises(FieldError):
        get_float({"temperature": ["nan"]}, "temperature", minimum=0, maximum=2)
    with pytest.raises(FieldError):
        get_float({"temperature": ["3"]}, "temperature", minimum=0, maximum=2)


def test_json_objects() -> None:
    assert get_json({"webhook_metadata": ['{"a": 1}']}, "webhook_metadata") == {"a": 1}
    assert get_json({"webhook_metadata": ["null"]}, "webhook_metadata") is None


def test_query_parameters_one_value_per_name() -> None:
    query = {"include_timestamps": "True", "vad_threshold": "0.3", "model_id": "null", "speakers": "2"}
    assert get_bool(query, "include_timestamps", False) is True
    assert get_bool(query, "enable_logging", True) is True
    assert get_float(query, "vad_threshold", minimum=0.1, maximum=0.9, default=0.4) == 0.3
    assert get_float(query, "vad_silence_threshold_secs", minimum=0.3, maximum=3, default=1.5) == 1.5
    assert get_int(query, "speakers", default=1) == 2 and get_int(query, "missing", default=1) == 1
    assert get_str(query, "model_id") is None
    with pytest.raises(FieldError, match="between 0.1 and 0.9"):
        get_float({"vad_threshold": "2"}, "vad_threshold", minimum=0.1, maximum=0.9)
