from __future__ import annotations

from pathlib import Path

import pytest

from router.settings import SettingsError, load_settings


def test_default_config_has_a_realistic_catalog() -> None:
    settings = load_settings(None, {})
    catalog = settings.catalog
    assert len(catalog.models) >= 5
    assert len(catalog.templates) >= 6
    assert len(catalog) >= 100
    assert {"balanced", "quality", "cost"} <= set(settings.profiles)


def test_catalog_only_config_is_valid(tmp_path: Path) -> None:
    config = tmp_path / "models.toml"
    config.write_text(
        "temperatures = [0.2]\n"
        '[[models]]\nname = "a"\ninput_price_per_mtok = 1\noutput_price_per_mtok = 2\n'
        "typical_latency_s = 3\n"
        '[[models]]\nname = "b"\ninput_price_per_mtok = 0\noutput_price_per_mtok = 0\n'
        "typical_latency_s = 9\n"
        '[[templates]]\nname = "plain"\n'
    )
    settings = load_settings(config, {})
    assert [a.id for a in settings.catalog.actions] == ["a|0.2|plain", "b|0.2|plain"]


def test_environment_overrides_are_typed() -> None:
    settings = load_settings(
        None,
        {
            "ROUTER__SERVER__PORT": "9001",
            "ROUTER__BANDIT__EXPLORATION": "epsilon",
            "ROUTER__AUTH__API_KEYS": '{"a-long-key-1": "acme"}',
            "OTHER": "ignored",
        },
    )
    assert settings.server.port == 9001
    assert settings.bandit.exploration == "epsilon"
    assert settings.auth.api_keys == {"a-long-key-1": "acme"}


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"ROUTER__BANDIT__EPSILON": "2"}, "bandit.epsilon"),
        ({"ROUTER__BANDIT__EXPLORATION": "greedy"}, "bandit.exploration"),
        ({"ROUTER__SERVER__PORT": "http"}, "server.port"),
        ({"ROUTER__STORAGE__NOPE": "1"}, "unknown field `nope`"),
        ({"ROUTER__DEFAULT_PROFILE": "speed"}, "default_profile"),
    ],
)
def test_bad_settings_name_the_key(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("`", ".")):
        load_settings(None, environ)


def test_bad_catalog_fails_at_start(tmp_path: Path) -> None:
    config = tmp_path / "dup.toml"
    config.write_text(
        '[[models]]\nname = "a"\ninput_price_per_mtok = 1\noutput_price_per_mtok = 2\n'
        "typical_latency_s = 3\n"
        '[[models]]\nname = "a"\ninput_price_per_mtok = 1\noutput_price_per_mtok = 2\n'
        "typical_latency_s = 3\n"
        '[[templates]]\nname = "plain"\n'
    )
    with pytest.raises(SettingsError, match="models: name 'a' appears twice"):
        load_settings(config, {})
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "missing.toml", {})
    negative = tmp_path / "neg.toml"
    negative.write_text(
        '[[models]]\nname = "a"\ninput_price_per_mtok = -1\noutput_price_per_mtok = 2\n'
        'typical_latency_s = 3\n[[templates]]\nname = "plain"\n'
    )
    with pytest.raises(SettingsError, match=r"models\[0\].input_price_per_mtok"):
        load_settings(negative, {})
