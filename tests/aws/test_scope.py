"""The session policy builder and the attribution mapping, against STS's documented limits."""

from __future__ import annotations

import json
import re

import pytest
from aws.aws_support import EPOCH
from hypothesis import given
from hypothesis import strategies as st

from bucketvault.models import Method, Mount, MountPolicy
from bucketvault.providers.aws.scope import (
    MAX_POLICY_CHARS,
    SessionPolicyTooLarge,
    SessionScope,
    attribution,
    check_limits,
    iam_literal,
    partition_of,
    session_policy,
    sts_name,
    tag_value,
)

ROLE = "arn:aws:iam::123456789012:role/r"
# STS's patterns (botocore sts/2011-06-15): names, and tag values.
STS_NAME = re.compile(r"^[\w+=,.@-]{2,64}$", re.ASCII)
TAG_VALUE_FORBIDDEN = re.compile(r"[^\w\s.:/=+\-@]")


def mount(prefix: str = "p/", methods: frozenset[Method] = frozenset(Method)) -> Mount:
    return Mount(
        "m-1", "acme", "m", "b", prefix, "", "", "c", MountPolicy(3600, methods), 1, EPOCH, EPOCH
    )


def policy_for(m: Mount, role: str = ROLE) -> dict[str, object]:
    return dict(json.loads(session_policy(SessionScope.of(m, role))))


def test_read_write_mount_gets_object_actions_on_prefix_and_listing_under_it() -> None:
    text = session_policy(SessionScope.of(mount(), ROLE))
    assert " " not in text and "\n" not in text, "compact JSON"
    assert json.loads(text) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": "arn:aws:s3:::b/p/*",
            },
            {
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": "arn:aws:s3:::b",
                "Condition": {"StringLike": {"s3:prefix": "p/*"}},
            },
        ],
    }


def test_read_only_mount_gets_get_object_only_and_no_prefix_means_whole_bucket() -> None:
    doc = policy_for(mount("", frozenset({Method.GET, Method.HEAD})))
    assert doc["Statement"] == [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b"},
    ]
    put_only = policy_for(mount("in/", frozenset({Method.PUT})))
    assert put_only["Statement"][0]["Action"] == "s3:PutObject"  # type: ignore[index]


@pytest.mark.parametrize(
    ("role", "partition"),
    [
        ("arn:aws:iam::123456789012:role/r", "aws"),
        ("arn:aws-cn:iam::123456789012:role/r", "aws-cn"),
        ("arn:aws-us-gov:iam::123456789012:role/r", "aws-us-gov"),
    ],
)
def test_partition_comes_from_the_role_arn(role: str, partition: str) -> None:
    assert partition_of(role) == partition
    doc = policy_for(mount(), role)
    assert doc["Statement"][1]["Resource"] == f"arn:{partition}:s3:::b"  # type: ignore[index]


def test_wildcards_in_a_prefix_are_literals() -> None:
    # IAM reads * and ? as wildcards and ${ as a variable: a prefix "a*b?$c/" must match
    # only itself, so those become the policy variables ${*} ${?} ${$}.
    assert iam_literal("a*b?$c/") == "a${*}b${?}${$}c/"
    doc = policy_for(mount("a*b?$c/"))
    stmts = doc["Statement"]
    assert stmts[0]["Resource"] == "arn:aws:s3:::b/a${*}b${?}${$}c/*"  # type: ignore[index]
    cond = stmts[1]["Condition"]["StringLike"]["s3:prefix"]  # type: ignore[index]
    assert cond == "a${*}b${?}${$}c/*"
    assert doc["Version"] == "2012-10-17", "policy variables need this version"


def test_non_latin1_prefix_is_escaped_into_the_characters_sts_accepts() -> None:
    text = session_policy(SessionScope.of(mount("日本/😀/"), ROLE))
    assert all(0x20 <= ord(c) <= 0x7E for c in text)
    assert json.loads(text)["Statement"][0]["Resource"] == "arn:aws:s3:::b/日本/😀/*"


def test_policy_over_2048_characters_is_refused_and_the_largest_fitting_prefix_passes() -> None:
    base = len(session_policy(SessionScope.of(mount(""), ROLE)))
    # The prefix appears twice (resource, condition) once there is one, plus a condition.
    fits = None
    for n in range(1, 1100):
        text = session_policy(SessionScope.of(mount("x" * n), ROLE))
        if len(text) > MAX_POLICY_CHARS:
            break
        fits = n
    assert fits is not None and fits > 900 and base < 300
    check_limits(session_policy(SessionScope.of(mount("x" * fits), ROLE)), ())
    with pytest.raises(SessionPolicyTooLarge) as info:
        check_limits(session_policy(SessionScope.of(mount("x" * (fits + 1)), ROLE)), ())
    assert info.value.reason == "SESSION_POLICY_TOO_LARGE" and info.value.field == "prefix"
    # Escapes count: 341 '*' cost 4 characters each in two places.
    with pytest.raises(SessionPolicyTooLarge):
        check_limits(session_policy(SessionScope.of(mount("*" * 300), ROLE)), ())


@given(st.text(max_size=120))
def test_sts_names_are_always_in_the_alphabet_and_distinct_inputs_stay_distinct(text: str) -> None:
    name = sts_name(text)
    assert STS_NAME.match(name)
    assert sts_name(text + "\x00") != name


def test_source_identity_mapping() -> None:
    assert sts_name("alice@example.com") == "alice@example.com"
    mapped = sts_name("spiffe://acme/ns/web")
    assert mapped.startswith("spiffe---acme-ns-web.") and STS_NAME.match(mapped)
    assert sts_name("a/b") != sts_name("a:b"), "a hash keeps mapped names apart"
    assert len(sts_name("x" * 100)) == 64
    assert sts_name("") == "bucketvault"


def test_attribution_tags_and_session_name() -> None:
    who = attribution("acme", "alice", SessionScope.of(mount("photos/2026/"), ROLE))
    assert who.source_identity == "alice"
    assert dict(who.tags) == {"bucketvault:tenant": "acme", "bucketvault:mount": "b/photos/2026/"}
    assert STS_NAME.match(who.session_name) and who.session_name.startswith("bv.acme.b.")
    odd = tag_value("b/a*b?#<>" + "z" * 300)
    assert len(odd) <= 256 and not TAG_VALUE_FORBIDDEN.search(odd)
    long = attribution("t" * 60, "c", SessionScope.of(mount(), ROLE))
    assert STS_NAME.match(long.session_name)
