"""The sandbox options as a deployment writes them, and the tier a set of host features
gives: pure logic, the rest is in tests/integration/test_sandbox_*.py."""

from __future__ import annotations

import pytest

from theazo.cli.serve import preload_modules
from theazo.sandbox.egress import EgressPolicy, HostRule
from theazo.sandbox.isolation import Features, Tier, missing_for
from theazo.sandbox.view import Mount


@pytest.mark.parametrize(
    ("spec", "mount"),
    [
        ("/data", Mount("/data", "/data")),
        ("/data:ro", Mount("/data", "/data")),
        ("/data:rw", Mount("/data", "/data", writable=True)),
        ("/srv/models:/models", Mount("/srv/models", "/models")),
        ("/srv/cache/:/cache/:rw", Mount("/srv/cache", "/cache", writable=True)),
    ],
)
def test_a_mount_is_host_path_sandbox_path_and_mode(spec: str, mount: Mount) -> None:
    assert Mount.parse(spec) == mount


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        ("data", "not an absolute path"),
        ("/data:models", "not an absolute path"),
        ("/a:/b:/c", "HOST_PATH"),
        ("/x:/", "not a place for a mount"),
        ("/x:/proc", "not a place for a mount"),
        ("/x:/tmp/x", "outside /workspace, /tmp"),
        ("/x:/workspace", "outside /workspace, /tmp"),
        (":/x", "HOST_PATH"),
    ],
)
def test_a_wrong_mount_says_what_is_wrong(spec: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        Mount.parse(spec)


@pytest.mark.parametrize(
    ("spec", "rule"),
    [
        ("api.openai.com", HostRule("api.openai.com")),
        ("API.OpenAI.com.:443", HostRule("api.openai.com", 443)),
        ("127.0.0.1:8080", HostRule("127.0.0.1", 8080)),
        ("[::1]:8080", HostRule("::1", 8080)),
        ("[::1]", HostRule("::1")),
    ],
)
def test_an_allowed_host_is_host_and_port(spec: str, rule: HostRule) -> None:
    assert HostRule.parse(spec) == rule


@pytest.mark.parametrize("spec", ["", ":80", "host:0", "host:70000", "host:http"])
def test_a_wrong_allowed_host_is_refused(spec: str) -> None:
    with pytest.raises(ValueError, match=r"HOST|port"):
        HostRule.parse(spec)


def test_allowing_hosts_replaces_the_public_only_rule() -> None:
    public_only = EgressPolicy()
    assert public_only.admits("example.com", 443)
    assert public_only.admits_address("93.184.216.34")
    assert not public_only.admits_address("127.0.0.1")
    assert not public_only.admits_address("2002:7f00:1::")  # 6to4 of 127.0.0.1

    narrowed = EgressPolicy((HostRule("127.0.0.1", 8080), HostRule("api.example.com")))
    assert narrowed.admits("127.0.0.1", 8080) and not narrowed.admits("127.0.0.1", 8081)
    assert narrowed.admits("api.example.com", 1234)
    assert not narrowed.admits("example.com", 443)
    assert narrowed.admits_address("127.0.0.1")  # the operator named it
    assert narrowed.forwards == {8080: HostRule("127.0.0.1", 8080)}  # loopback with a port


@pytest.mark.parametrize(
    ("features", "tier"),
    [
        (Features(), Tier.PROCESS),
        (Features(namespaces=True), Tier.PROCESS),  # no seccomp filter: not a wall
        (Features(namespaces=True, seccomp=True), Tier.NAMESPACES),
        (Features(namespaces=True, seccomp=True, landlock_abi=3), Tier.LANDLOCK),
        (Features(namespaces=True, seccomp=True, landlock_abi=7, cgroup="v2"), Tier.CGROUP),
        (Features(namespaces=True, seccomp=True, cgroup="v1"), Tier.NAMESPACES),
    ],
)
def test_the_tier_is_the_strongest_the_features_make(features: Features, tier: Tier) -> None:
    assert features.tier is tier


def test_what_is_missing_for_a_tier_says_how_to_get_it() -> None:
    found = Features(
        namespaces_error="cannot create namespaces: [Errno 28] No space left on device",
        seccomp=True,
    ).as_message()
    (namespaces,) = missing_for(Tier.NAMESPACES, found)
    assert "unprivileged_userns_clone" in namespaces and "Errno 28" in namespaces
    assert len(missing_for(Tier.CGROUP, found)) == 3
    assert missing_for(Tier.PROCESS, found) == []


def test_tiers_parse_by_name() -> None:
    assert Tier.parse(" Landlock ") is Tier.LANDLOCK
    with pytest.raises(ValueError, match="process, namespaces, landlock, cgroup"):
        Tier.parse("strict")


@pytest.mark.parametrize(
    ("value", "modules"),
    [
        ("ssl,certifi,httpx", ("ssl", "certifi", "httpx")),
        (" httpx , openai ,", ("httpx", "openai")),
        ("none", ()),
        ("None", ()),
        ("", ()),
    ],
)
def test_the_preload_is_a_list_of_modules_or_none(value: str, modules: tuple[str, ...]) -> None:
    assert preload_modules(value) == modules
