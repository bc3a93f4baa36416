"""What Venus logs about acks=all for what a cluster reports (values a single-node Tansu cannot report)."""

from __future__ import annotations

from venus_grpc.server.durability import MIN_INSYNC, NOT_CHECKED, REPLICATION, Durability, findings

_SAFE = {REPLICATION: 3, MIN_INSYNC: 2}


def test_three_replicas_and_two_in_sync_say_nothing() -> None:
    """The standard advice (replication factor 3, min.insync.replicas 2) gives no line at all."""
    assert findings(Durability(defaults=_SAFE, replicas={"t.A": 3}, min_insync={"t.A": 2})) == []


def test_a_cluster_default_of_one_replica_is_a_warning() -> None:
    """default.replication.factor=1 is a WARNING naming the setting: new categories' topics would keep one copy."""
    [(level, message, fields)] = findings(Durability(defaults={REPLICATION: 1, MIN_INSYNC: 1}))
    assert level == "warning"
    assert (fields["setting"], fields["value"]) == (REPLICATION, 1)
    assert "default.replication.factor=1" in message


def test_a_cluster_default_of_one_in_sync_replica_with_three_replicas_is_a_warning() -> None:
    """min.insync.replicas=1 with replication 3 is a WARNING: acks=all may then wait for the leader alone."""
    [(level, message, fields)] = findings(Durability(defaults={REPLICATION: 3, MIN_INSYNC: 1}))
    assert level == "warning"
    assert (fields["setting"], fields["value"]) == (MIN_INSYNC, 1)
    assert "leader alone" in message


def test_a_topic_overriding_min_insync_replicas_to_one_is_named() -> None:
    """A topic whose own min.insync.replicas is 1 is named even when the cluster default is safe."""
    [(level, _, fields)] = findings(Durability(defaults=_SAFE, replicas={"t.A": 3, "t.B": 3}, min_insync={"t.B": 1}))
    assert level == "warning"
    assert (fields["setting"], fields["topics"]) == (MIN_INSYNC, ["t.B"])


def test_a_topic_without_its_own_setting_follows_the_cluster_default() -> None:
    """A topic that reports no min.insync.replicas is judged by the cluster default."""
    lines = findings(Durability(defaults={REPLICATION: 3, MIN_INSYNC: 1}, replicas={"t.A": 3}))
    assert [fields.get("topics") for _, _, fields in lines] == [None, ["t.A"]]


def test_an_unreported_default_is_noted_at_info() -> None:
    """A cluster that does not report a default gets one INFO line listing what it did not say."""
    [(level, message, fields)] = findings(Durability(defaults={REPLICATION: 3}))
    assert (level, message, fields["missing"]) == ("info", NOT_CHECKED, [MIN_INSYNC])
