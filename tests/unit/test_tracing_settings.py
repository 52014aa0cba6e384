"""The OTEL_* settings bo reads itself: a value it cannot follow stops the command at start, in
one line naming the variable (exit 2); the sampling ratio of bo's default sampler by process."""

from __future__ import annotations

import pytest

from bo import cli
from telemetry.tracing import DEFAULT_RATIOS, TracingConfigurationError, sampled_ratio


@pytest.mark.parametrize(("command", "variable", "value"), [
    (["ingest"], "OTEL_TRACES_EXPORTER", "jaeger"),
    (["serve", "--bind", "127.0.0.1:9"], "OTEL_TRACES_SAMPLER_ARG", "ten percent"),
    (["serve", "--bind", "127.0.0.1:9"], "OTEL_TRACES_SAMPLER_ARG", "1.5"),
])
def test_a_tracing_setting_bo_cannot_follow_stops_the_command_in_one_line(
        command: list[str], variable: str, value: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    monkeypatch.setenv(variable, value)
    monkeypatch.setenv("BO_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")
    assert cli.main(command) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"bo: {variable}="), err


def test_the_argument_sets_the_apis_ratio_and_batches_are_always_sampled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    monkeypatch.delenv("OTEL_TRACES_SAMPLER_ARG", raising=False)
    assert sampled_ratio("api") == DEFAULT_RATIOS["api"] == 0.01
    assert sampled_ratio("ingest") == sampled_ratio("project") == 1.0
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    assert sampled_ratio("api") == 0.25
    assert sampled_ratio("ingest") == sampled_ratio("project") == 1.0
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "-0.1")
    with pytest.raises(TracingConfigurationError):
        sampled_ratio("api")


def test_a_sampler_named_in_the_environment_takes_its_own_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "my_sampler")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "endpoint=http://sampling.example:5778")
    assert sampled_ratio("api") is None and sampled_ratio("ingest") is None
