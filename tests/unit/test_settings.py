import pytest

from schemas.errors import ConfigError
from schemas.settings import Settings, amqp_login, amqp_node, redact_url


def test_defaults_are_the_local_services() -> None:
    s = Settings.from_env({})
    assert s.amqp_url == "amqp://guest:guest@127.0.0.1:5672/%2F"
    assert s.mongo_uri == "mongodb://127.0.0.1:27017"
    assert s.mongo_db == "finpipe"
    assert s.model == "gpt-6-luna"
    assert s.effective_provider == "rules"


def test_llm_mode_is_sync_unless_set_and_ignores_case() -> None:
    assert Settings.from_env({}).llm_mode == "sync"
    assert Settings.from_env({"FINPIPE_LLM_MODE": " Batch "}).llm_mode == "batch"
    assert Settings.from_env({"FINPIPE_LLM_MODE": "flex"}).llm_mode == "flex"
    with pytest.raises(ConfigError, match=r"^FINPIPE_LLM_MODE='cheap' is invalid: .*'batch'"):
        Settings.from_env({"FINPIPE_LLM_MODE": "cheap"})


def test_an_api_key_selects_the_openai_provider() -> None:
    s = Settings.from_env({"OPENAI_API_KEY": "k-123", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})
    assert s.effective_provider == "openai"
    assert (
        Settings.from_env({"OPENAI_API_KEY": "k", "FINPIPE_PROVIDER": "rules"}).effective_provider
        == "rules"
    )


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"FINPIPE_AMQP_URL": "http://host"}, "FINPIPE_AMQP_URL"),
        ({"FINPIPE_MONGO_URI": "postgres://x"}, "FINPIPE_MONGO_URI"),
        ({"FINPIPE_BATCH_SNIPPETS": "zero"}, "FINPIPE_BATCH_SNIPPETS"),
        ({"FINPIPE_BATCH_SNIPPETS": "0"}, "FINPIPE_BATCH_SNIPPETS"),
        ({"FINPIPE_MONGO_DB": "bad name"}, "FINPIPE_MONGO_DB"),
        ({"FINPIPE_TIMEZONE": "Mars/Olympus"}, "FINPIPE_TIMEZONE"),
        ({"OPENAI_BASE_URL": "ftp://x"}, "OPENAI_BASE_URL"),
        ({"FINPIPE_WRITE_CONCERN": "most"}, "FINPIPE_WRITE_CONCERN"),
        ({"FINPIPE_LLM_MODE": "cheap"}, "FINPIPE_LLM_MODE"),
        ({"FINPIPE_BATCH_POLL_S": "0"}, "FINPIPE_BATCH_POLL_S"),
        ({"FINPIPE_BATCH_CANCEL_MARGIN_S": "-1"}, "FINPIPE_BATCH_CANCEL_MARGIN_S"),
    ],
)
def test_a_bad_value_fails_naming_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env(env)
    assert str(err.value).startswith(f"{variable}=")
    assert "\n" not in str(err.value)


def test_secrets_never_appear_in_repr_or_errors() -> None:
    s = Settings.from_env(
        {"OPENAI_API_KEY": "k-secret-value", "FINPIPE_AMQP_URL": "amqp://u:hunter2@h:5672/%2F"}
    )
    assert "k-secret-value" not in repr(s)
    assert "hunter2" not in repr(s)
    with pytest.raises(ConfigError) as err:
        Settings.from_env({"FINPIPE_MONGO_URI": "mysql://u:hunter2@h"})
    assert "hunter2" not in str(err.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("amqp://guest:guest@127.0.0.1:5672/%2F", "amqp://guest:***@127.0.0.1:5672/%2F"),
        ("mongodb://127.0.0.1:27017", "mongodb://127.0.0.1:27017"),
        ("mongodb://user@h", "mongodb://user@h"),
        ("amqp://h1:5672/%2F,amqp://h2:5672/%2F", "amqp://h1:5672/%2F,amqp://h2:5672/%2F"),
        ("mongodb://u:pw@h1:27017,h2:27017/?rs=a", "mongodb://u:***@h1:27017,h2:27017/?rs=a"),
        # unencoded reserved characters in the password, however the URL parses
        ("amqp://guest:s3cr#et@h:5672/", "amqp://guest:***@h:5672/"),
        ("mongodb://u:s3c?ret@h:27017/", "mongodb://u:***@h:27017/"),
        ("mongodb://u:s3c/ret@h:27017/db", "mongodb://u:***@h:27017/db"),
        ("amqp://u:a,b,c@h1/,amqp://u:a,b,c@h2/", "amqp://u:***@h1/,amqp://u:***@h2/"),
        ("amqp://u:p@ss@h/", "amqp://u:***@h/"),
        ("amqp://u:#?/,@h", "amqp://u:***@h"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize("password", ["s3cr#et-pw", "s3c?ret-pw", "s3c/ret-pw", "s3c,ret-pw"])
def test_a_password_with_reserved_characters_is_hidden_in_the_configuration_error(
    password: str,
) -> None:
    url = f"amqp://guest:{password}@127.0.0.1:56x/,amqp://guest:{password}@127.0.0.2:5672/"
    for value in (url, url.replace("56x", "5672").replace("127.0.0.2", "127.0.0.1")):
        with pytest.raises(ConfigError) as err:
            Settings.from_env({"FINPIPE_AMQP_URL": value.replace("/,", "/,  ")})
        text = str(err.value)
        assert text.startswith("FINPIPE_AMQP_URL='amqp://guest:***@127.0.0.1:")
        for piece in ("s3c", "ret-pw", password):
            assert piece not in text, text


def test_a_password_with_a_comma_keeps_its_url_whole() -> None:
    s = Settings.from_env({"FINPIPE_AMQP_URL": "amqp://u:a,b@h1/x,amqp://u:a,b@h2/x"})
    assert s.amqp_urls == ("amqp://u:a,b@h1/x", "amqp://u:a,b@h2/x")


def test_pieces_of_a_password_a_parser_cut_are_hidden_in_its_messages() -> None:
    from schemas.settings import redact_secrets

    url = "mongodb://u:long#secret/part@h:27017/"
    said = "bad port 'secret' in 'long#secret/part@h' near 'part'"
    assert redact_secrets(said, url) == "bad port '***' in '***@h' near '***'"


def test_to_env_round_trips_through_from_env() -> None:
    s = Settings.from_env(
        {
            "OPENAI_API_KEY": "k-1",
            "FINPIPE_RETRY_DELAYS_S": "1,2,3",
            "FINPIPE_BATCH_SNIPPETS": "7",
            "FINPIPE_INBOX": "/tmp/in",
        }
    )
    assert Settings.from_env(s.to_env()) == s


def test_empty_variables_are_unset_and_only_the_given_mapping_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FINPIPE_QUEUE", "from.the.process")
    s = Settings.from_env({"FINPIPE_QUEUE": "  ", "FINPIPE_MONGO_DB": " other "})
    assert s.queue == "finpipe.reports"
    assert s.mongo_db == "other"
    assert Settings.from_env().queue == "from.the.process"


def test_retry_delays_default_to_the_topology_steps() -> None:
    from schemas.topology import RETRY_DELAYS_S, Topology

    s = Settings.from_env({})
    assert s.retry_delays_s == RETRY_DELAYS_S
    assert Topology.for_settings(s).retry_delays_s == RETRY_DELAYS_S


def test_several_broker_addresses_are_the_nodes_of_one_cluster() -> None:
    urls = "amqp://u:pw@h1:5681/%2F, amqp://u:pw@h2:5682/%2F,amqp://u:pw@h3:5683/%2F"
    s = Settings.from_env({"FINPIPE_AMQP_URL": urls})
    assert s.amqp_urls == (
        "amqp://u:pw@h1:5681/%2F",
        "amqp://u:pw@h2:5682/%2F",
        "amqp://u:pw@h3:5683/%2F",
    )
    assert Settings.from_env(s.to_env()) == s
    assert "pw" not in repr(s)
    assert redact_url(s.amqp_url).count("u:***@") == 3


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("amqp://h", "amqp://h:5672/", True),
        ("amqp://H:5672", "amqp://h", True),
        ("amqps://h", "amqps://h:5671", True),
        ("amqps://h", "amqp://h:5671", False),
        ("amqp://h:5681", "amqp://h:5682", False),
    ],
)
def test_a_node_is_compared_with_its_default_port_and_host_in_lower_case(
    a: str, b: str, same: bool
) -> None:
    assert (amqp_node(a) == amqp_node(b)) is same


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("amqp://u:pw@h/%2f", "amqp://u:pw@h/%2F", True),
        ("amqp://u:pw@h", "amqp://u:pw@h/%2F", True),
        ("amqp://u:pw@h/", "amqp://u:pw@h/%2f", True),
        ("amqp://u%40x:pw@h/v", "amqp://u@x:pw@h/v", True),
        ("amqp://u:pw@h/prod", "amqp://u:pw@h/test", False),
        ("amqp://u:pw@h/a%2Fb", "amqp://u:pw@h/a%2fb", True),
    ],
)
def test_logins_are_compared_decoded(a: str, b: str, same: bool) -> None:
    assert (amqp_login(a) == amqp_login(b)) is same


def test_a_cluster_may_spell_its_vhost_in_either_case_of_percent_encoding() -> None:
    urls = "amqp://u:pw@h1:5681/%2f,amqp://u:pw@h2:5682/%2F,amqp://u:pw@h3:5683"
    assert len(Settings.from_env({"FINPIPE_AMQP_URL": urls}).amqp_urls) == 3


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("amqp://u:pw@h:abc/%2F", "the port must be a number from 1 to 65535"),
        ("amqp://u:pw@h:99999/%2F", "the port must be a number from 1 to 65535"),
        ("amqp://u:pw@:5672/%2F", "no host"),
        ("amqp://u:pw@h1:5681,h2:5682/%2F", "h2:5682/%2F: must start with amqp:// or amqps://"),
        ("amqp://u:pw@h1/%2F,", "an empty address in the comma-separated list"),
        ("amqp://u:pw@h1/%2F,amqp://u:other@h2/%2F", "same user, password and virtual host"),
        ("amqp://u:pw@h1/%2F,amqp://u:pw@h2/other", "same user, password and virtual host"),
        ("amqp://u:pw@h1/%2F,amqp://u:pw@h1/%2F", "amqp://u:***@h1/%2F: listed twice"),
        (
            "amqp://u:pw@h1/%2F,amqp://u:pw@H1:5672/%2F",
            "amqp://u:***@H1:5672/%2F: listed twice (as amqp://u:***@h1/%2F)",
        ),
        ("amqps://u:pw@h1:5671/,amqps://u:pw@h1/", "listed twice"),
    ],
)
def test_a_bad_broker_address_is_one_line_naming_the_variable(url: str, why: str) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env({"FINPIPE_AMQP_URL": url})
    message = str(err.value)
    assert message.startswith("FINPIPE_AMQP_URL=")
    assert why in message
    assert "\n" not in message
    assert ":pw@" not in message
