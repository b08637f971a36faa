"""The pytest plugin: fixtures available once kiwi is installed."""

from __future__ import annotations

import pytest

import kiwi

pytestmark = pytest.mark.kiwi_only

EXAMPLE = """
def test_client_starts_empty(kiwi_client):
    assert kiwi_client.dbsize() == 0
    kiwi_client.set("leftover", 1)

def test_client_is_flushed_between_tests(kiwi_client):
    assert kiwi_client.get("leftover") is None
    kiwi_client.incr("hits")
    assert kiwi_client.get("hits") == b"1"

def test_server_is_shared(kiwi_server, kiwi_client):
    other = kiwi_server.client()
    kiwi_client.set("k", "v")
    assert other.get("k") == b"v"
    other.close()

def test_embedded_db(kiwi_db):
    kiwi_db.mset({"a": 1, "b": 2})
    assert kiwi_db.mget("a", "b") == [b"1", b"2"]
"""


def test_fixtures_work_from_the_entry_point(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_example=EXAMPLE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=4)


def test_kiwi_port_runs_against_an_existing_server(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_external="""
def test_sees_existing_data(kiwi_client, kiwi_server):
    assert kiwi_server.dir is None
    kiwi_client.set("written-by-test", "1")
"""
    )
    with kiwi.Server() as server:
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", f"--kiwi-port={server.port}")
        result.assert_outcomes(passed=1)
        client = server.client()
        try:
            assert client.get("written-by-test") == b"1"
        finally:
            client.close()


def test_kiwi_dir_keeps_the_session_data(pytester: pytest.Pytester, tmp_path) -> None:
    data = tmp_path / "session-data"
    pytester.makepyfile(
        test_dir="""
def test_write(kiwi_client):
    kiwi_client.set("persisted", "yes")
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", f"--kiwi-dir={data}")
    result.assert_outcomes(passed=1)
    with kiwi.open(data) as db:
        assert db.get("persisted") == b"yes"


def test_kiwi_cluster_is_healed_and_flushed_between_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_cluster_fixture="""
def test_break_things(kiwi_cluster):
    client = kiwi_cluster.client()
    client.set("leftover", "1")
    client.close()
    kiwi_cluster.isolate(kiwi_cluster.leader())
    kiwi_cluster.kill(2)

def test_everything_back(kiwi_cluster):
    assert all(node.running for node in kiwi_cluster.nodes)
    leader = kiwi_cluster.wait_for_leader()
    client = kiwi_cluster.nodes[leader].client()
    assert client.get("leftover") is None
    assert client.set("k", "v") is True
    client.close()
    for node in kiwi_cluster.nodes:
        c = node.client()
        assert c.get("k") == b"v"
        c.close()
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=2)
