"""The `dalston` client commands' own logic: which server and key, API errors as one line and an
exit code, and what the command line sends. The commands against a real fleet: tests/e2e/test_cli.py."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from support import FIXTURES, free_port
from typer.testing import CliRunner

from dalston.cli import app, main
from dalston.client import CliError, Exit, Target, api_error, resolve_target, transport_error
from dalston.commands.exports import Format
from dalston.commands.transcribe import _form, output_paths, stages_markup


def error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


# -- server and key ---------------------------------------------------------------------


def test_flags_win_over_the_environment(tmp_path: Path) -> None:
    env = {"DALSTON_SERVER": "http://env:1", "DALSTON_API_KEY": "dk_env", "DALSTON_DATA_DIR": str(tmp_path)}
    target = resolve_target("http://flag:2/", "dk_flag", env)
    assert target == Target("http://flag:2", "dk_flag", "--api-key")


def test_environment_wins_over_the_saved_key(tmp_path: Path) -> None:
    (tmp_path / "admin_api_key").write_text("dk_saved\n")
    env = {"DALSTON_SERVER": "https://speech.example", "DALSTON_API_KEY": "dk_env", "DALSTON_DATA_DIR": str(tmp_path)}
    assert resolve_target(None, None, env) == Target("https://speech.example", "dk_env", "DALSTON_API_KEY")


def test_falls_back_to_what_dalston_up_uses(tmp_path: Path) -> None:
    (tmp_path / "admin_api_key").write_text("dk_saved\n")
    target = resolve_target(None, None, {"DALSTON_DATA_DIR": str(tmp_path)})
    assert target.server == "http://127.0.0.1:8000"
    assert target.api_key == "dk_saved"
    assert target.key_source == str(tmp_path / "admin_api_key")
    assert (
        resolve_target(None, None, {"DALSTON_DATA_DIR": str(tmp_path), "DALSTON_PORT": "8791"}).server == "http://127.0.0.1:8791"
    )


def test_saved_key_defaults_to_dot_dalston(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_target(None, None, {}).api_key is None
    (tmp_path / ".dalston").mkdir()
    (tmp_path / ".dalston" / "admin_api_key").write_text("dk_local\n")
    assert resolve_target(None, None, {}).api_key == "dk_local"


def test_server_without_scheme_is_http() -> None:
    assert resolve_target("localhost:8000", "k", {}).server == "http://localhost:8000"


@pytest.mark.parametrize("server", ["ftp://host", "http://", "ws://host:8000"])
def test_a_server_that_is_not_http_is_bad_usage(server: str) -> None:
    with pytest.raises(CliError) as caught:
        resolve_target(server, "k", {})
    assert caught.value.code == Exit.USAGE


def test_a_bad_port_is_bad_usage() -> None:
    with pytest.raises(CliError) as caught:
        resolve_target(None, "k", {"DALSTON_PORT": "eighty"})
    assert caught.value.code == Exit.USAGE and "DALSTON_PORT" in caught.value.message


# -- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, Exit.ERROR),
        (401, Exit.AUTH),
        (403, Exit.AUTH),
        (404, Exit.NOT_FOUND),
        (409, Exit.ERROR),
        (413, Exit.ERROR),
        (500, Exit.ERROR),
    ],
)
def test_api_errors_map_to_exit_codes(status: int, code: Exit) -> None:
    error = api_error(status, error_body("some_code", "what went wrong"))
    assert error.code == code
    assert error.message == f"what went wrong (some_code, HTTP {status})"


def test_a_refused_key_says_where_it_came_from() -> None:
    body = error_body("invalid_api_key", "the API key is invalid, revoked or expired")
    given = api_error(401, body, target=Target("http://h", "dk_x", "DALSTON_API_KEY"))
    assert given.message.endswith("the key came from DALSTON_API_KEY")
    missing = api_error(401, error_body("missing_api_key", "an API key is required"), target=Target("http://h", None, "x"))
    assert "no key found" in missing.message and "--api-key" in missing.message


def test_an_error_is_one_line_whatever_the_body() -> None:
    assert "\n" not in api_error(400, error_body("c", "line one\nline two")).message
    proxy = api_error(502, b"<html>\n<body>Bad Gateway</body>\n</html>")
    assert proxy.message == "<html> (HTTP 502)" and proxy.code == Exit.ERROR
    assert api_error(503, b"").message == "the server answered HTTP 503"
    assert api_error(422, json.dumps({"detail": "nope"}).encode()).message == "nope (HTTP 422)"


def test_no_answer_is_unreachable() -> None:
    request = httpx.Request("GET", "http://127.0.0.1:1/")
    refused = transport_error(httpx.ConnectError("[Errno 111] Connection refused", request=request), "http://127.0.0.1:1")
    assert refused.code == Exit.UNREACHABLE
    assert "http://127.0.0.1:1" in refused.message and "Connection refused" in refused.message
    assert transport_error(httpx.ReadTimeout("timed out", request=request), "http://h").code == Exit.UNREACHABLE
    assert transport_error(httpx.RemoteProtocolError("peer closed", request=request), "http://h").code == Exit.UNREACHABLE
    assert transport_error(httpx.UnsupportedProtocol("no scheme", request=request), "h").code == Exit.USAGE


# -- what transcribe sends and writes ---------------------------------------------------


def test_form_fields() -> None:
    assert _form(None, None, False, False, None) == {}
    assert _form("base", "es", True, False, None) == {"model": "base", "language": "es", "speaker_detection": "diarize"}
    assert _form(None, None, False, True, None) == {"speaker_detection": "per_channel"}
    assert _form(None, None, False, False, 3) == {"speaker_detection": "diarize", "num_speakers": "3"}


def test_output_paths_keep_names_apart(tmp_path: Path) -> None:
    files = [Path("a/talk.wav"), Path("b/talk.mp3"), Path("c/other.wav")]
    assert output_paths(files, Format.srt, tmp_path) == [tmp_path / "talk.srt", tmp_path / "talk-2.srt", tmp_path / "other.srt"]
    assert output_paths(files, Format.txt, None) == [None, None, None]


def test_stages_markup_shows_each_stage_state() -> None:
    job = {
        "id": "3f0c1a2b-0000-0000-0000-000000000000",
        "status": "running",
        "stages": [
            {"name": "prepare", "status": "completed"},
            {"name": "transcribe", "status": "running"},
            {"name": "merge", "status": "pending"},
        ],
    }
    markup = stages_markup(job)
    assert "job 3f0c1a2b" in markup
    assert markup.index("prepare ✓") < markup.index("transcribe ⟳") < markup.index("merge")
    assert "failed" in stages_markup({**job, "status": "failed", "stages": []})


# -- the command line -------------------------------------------------------------------


def test_help_documents_every_exit_code() -> None:
    result = CliRunner().invoke(app, ["--help"], terminal_width=200)
    assert result.exit_code == 0
    for code in Exit:
        assert f"{int(code)} " in result.output, code


@pytest.mark.parametrize(
    "args",
    [
        ["transcribe", "--diarize", "--per-channel", str(FIXTURES / "short_en.wav")],
        ["transcribe", "no/such/file.wav"],
        ["transcribe", "--format", "mp3", str(FIXTURES / "short_en.wav")],
        ["listen", "--diarize", "--file", str(FIXTURES / "short_en.wav")],
        ["jobs", "frobnicate"],
        ["nosuchcommand"],
    ],
)
def test_bad_usage_exits_2(args: list[str]) -> None:
    assert main(args) == Exit.USAGE


def test_unreachable_server_is_one_line_and_exit_5(capsys: pytest.CaptureFixture[str]) -> None:
    server = f"http://127.0.0.1:{free_port()}"
    assert main(["jobs", "ls", "--server", server, "--api-key", "dk_x"]) == Exit.UNREACHABLE
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dalston: cannot reach the Dalston server at " + server)


def test_missing_microphone_support_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        import sounddevice  # noqa: F401
    except (ImportError, OSError):
        assert main(["listen", "--server", f"http://127.0.0.1:{free_port()}", "--api-key", "k"]) == Exit.ERROR
        assert "sounddevice" in capsys.readouterr().err
    else:
        pytest.skip("sounddevice is installed here")


def test_the_format_choices_are_the_servers_export_formats() -> None:
    from shared.formats import EXPORT_FORMATS

    assert {f.value for f in Format} == set(EXPORT_FORMATS)
