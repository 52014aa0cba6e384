"""The OTEL_* settings bo reads itself: a value it cannot follow stops the command at start, in
one line naming the variable (exit 2), and the sampling ratio defaults by process."""

from __future__ import annotations

import pytest

from bo import cli
from telemetry.tracing import DEFAULT_RATIOS, TracingConfigurationError, sampled_ratio


@pytest.mark.parametrize(("variable", "value"), [("OTEL_TRACES_EXPORTER", "jaeger"),
                                                  ("OTEL_TRACES_SAMPLER_ARG", "ten percent"),
                                                  ("OTEL_TRACES_SAMPLER_ARG", "1.5")])
def test_a_tracing_setting_bo_cannot_follow_stops_the_command_in_one_line(
        variable: str, value: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(variable, value)
    monkeypatch.setenv("BO_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")
    assert cli.main(["ingest"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"bo: {variable}="), err


def test_the_sampled_ratio_is_the_argument_when_given_else_the_process_default(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_TRACES_SAMPLER_ARG", raising=False)
    assert sampled_ratio("api") == DEFAULT_RATIOS["api"] == 0.01
    assert sampled_ratio("ingest") == sampled_ratio("project") == 1.0
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    assert sampled_ratio("api") == 0.25
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "-0.1")
    with pytest.raises(TracingConfigurationError):
        sampled_ratio("api")
