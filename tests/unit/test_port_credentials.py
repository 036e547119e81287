"""Publisher credentials and rate limits of the publish API, without Redis."""

from __future__ import annotations

import pytest

from stream.ingest.publishers import PublisherError, TokenBucket, check_sources, digest, split_credential


@pytest.mark.parametrize(
    ("credential", "expected"),
    [
        ("cpk.0123abcd.s3cr-et_x", ("0123abcd", "s3cr-et_x")),
        ("  cpk.0a1b.secret  ", ("0a1b", "secret")),
        ("cpk.0a1b.s\u00e9cret", None),
        ("cpk.0a1b." + "x" * 600, None),
        ("cpk.id", None),
        ("cpk..secret", None),
        ("xyz.id.secret", None),
        ("cpk.id.secret.more", None),
    ],
)
def test_split_credential(credential: str, expected: tuple[str, str] | None) -> None:
    """Only 'cpk.<key id>.<secret>' is a credential."""
    assert split_credential(credential) == expected


def test_digest_depends_on_salt_and_secret() -> None:
    """The stored hash changes with the salt and with the secret, and is not the secret."""
    a = digest("00" * 16, "secret")
    assert a != digest("01" * 16, "secret") and a != digest("00" * 16, "secret2")
    assert "secret" not in a and len(a) == 64


@pytest.mark.parametrize("sources", [(), ("port",), ("stream",), ("a:b",), ("x" * 65,)])
def test_bad_sources_are_refused(sources: tuple[str, ...]) -> None:
    """Empty, reserved or malformed sources cannot be given to a publisher."""
    with pytest.raises(PublisherError):
        check_sources(sources)


def test_token_bucket_allows_a_burst_then_paces() -> None:
    """A bucket of burst 2 at 1/s lets two requests through, then asks to wait, then refills."""
    bucket = TokenBucket(rate=1.0, burst=2.0, stamp=100.0)
    assert [bucket.take(now=100.0), bucket.take(now=100.0)] == [0.0, 0.0]
    assert bucket.take(now=100.0) == pytest.approx(1.0)
    assert bucket.take(now=100.5) == pytest.approx(0.5)
    assert bucket.take(now=101.0) == 0.0
    assert bucket.take(5.0, now=101.0) == pytest.approx(5.0)  # work counts, not requests
