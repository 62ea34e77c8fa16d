"""Kraken API-Sign against every vector in protocols.md (section 1.2)."""

from __future__ import annotations

import base64

import pytest

from framework.exchanges.kraken.signer import sign

DOC_SECRET = (
    "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
)
DOC_NONCE = 1616492376594


@pytest.mark.parametrize(
    ("path", "nonce", "body", "secret", "expected"),
    [
        pytest.param(  # Kraken's documented vector
            "/0/private/AddOrder",
            DOC_NONCE,
            b"nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25",
            DOC_SECRET,
            "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ==",
            id="docs-addorder",
        ),
        pytest.param(  # Kraken's SDK golden vector: 32 bytes of 0x01
            "/0/private/Balance",
            1700000000000000000,
            b"nonce=1700000000000000000",
            base64.b64encode(b"\x01" * 32).decode(),
            "6i7+cpXVLDDnDOekgsRcgFQhkYFyPDSSxhSVA8OrA6vjziXcy2K1DP3n7f9B/Kgni71WjBSQusZKxduRsdF20Q==",
            id="sdk-balance",
        ),
        pytest.param(
            "/0/private/Balance",
            DOC_NONCE,
            b"nonce=1616492376594",
            DOC_SECRET,
            "1nH4vwR+8FHiYh1QT649xXkGd3JR3x0DWkgv3u9Ed/Qqv6KPtgQpEU4m+Emb/VgpEji3j1XNwI+HCbfXxmrTOg==",
            id="self-balance",
        ),
        pytest.param(
            "/0/private/AddOrder",
            DOC_NONCE,
            b'{"nonce":1616492376594,"ordertype":"limit","pair":"XBTUSD","price":"37500",'
            b'"type":"buy","volume":"1.25"}',
            DOC_SECRET,
            "kMkTQfyYJH05IdnWQ9TIqL9Kq+dKqcD5O/TGPPLRwwy1is/YvqEYtMAHf7tXsqwfbLwp7pbzJzWHxzKPnL8rfA==",
            id="self-json-addorder",
        ),
    ],
)
def test_vectors(path: str, nonce: int, body: bytes, secret: str, expected: str) -> None:
    assert sign(path, nonce, body, secret) == expected


def test_signature_covers_path_nonce_and_body() -> None:
    body = b"nonce=1616492376594"
    base = sign("/0/private/Balance", DOC_NONCE, body, DOC_SECRET)
    assert sign("/0/private/OpenOrders", DOC_NONCE, body, DOC_SECRET) != base
    assert sign("/0/private/Balance", DOC_NONCE + 1, body, DOC_SECRET) != base
    assert sign("/0/private/Balance", DOC_NONCE, body + b"&x=1", DOC_SECRET) != base
