"""The server's canonical request equals botocore's for awkward paths, queries and headers."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from gdapi import protocol, sigv4

ARN = "arn:aws:guardduty:us-east-1:123456789012:detector/abc/filter/my.filter"


@pytest.mark.parametrize("method, url, body", [
    ("GET", "http://127.0.0.1:8000/gd/detector", b""),
    ("GET", "http://127.0.0.1:8000/gd/detector?maxResults=5&nextToken=a%2Fb%3D%3D", b""),
    ("DELETE", "http://h/gd/tags/" + protocol.operations()["UntagResource"].render_path({"ResourceArn": ARN})[6:]
     + "?tagKeys=a%20b&tagKeys=z&tagKeys=%C3%A9", b""),
    ("POST", "http://h/gd/detector/abc/findings", b'{"findingCriteria": {"criterion": {}}}'),
    ("GET", "http://h/a/./b/../gd//detector", b""),
])
def test_canonical_request_matches_botocore(method, url, body):
    request = AWSRequest(method=method, url=url, data=body, headers={"Content-Type": "application/json",
                                                                     "X-Custom": "  two   spaces "})
    signer = SigV4Auth(Credentials("VGLAEXAMPLE", "secret"), "guardduty", "us-east-1")
    signer.add_auth(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    auth = sigv4.parse_authorization(headers["authorization"])
    del request.headers["Authorization"]  # botocore's own canonical form is computed without it
    expected = signer.canonical_request(request)
    parts = urlsplit(url)
    headers.setdefault("host", parts.netloc)
    ours = sigv4.canonical_request(method=method, raw_path=parts.path, raw_query=parts.query, headers=headers,
                                   signed_headers=auth.signed_headers, payload_hash=hashlib.sha256(body).hexdigest())
    assert ours == expected
    to_sign = sigv4.string_to_sign(amz_date=headers["x-amz-date"], scope=auth.scope, canonical=ours)
    assert sigv4.signature("secret", auth, to_sign) == auth.signature


def test_routes_cover_the_model():
    ops = protocol.operations()
    assert len(ops) >= 87
    for op in ops.values():
        params = {name.rstrip("+"): "x1" for name in re.findall(r"{(.*?)}", op.uri)}
        assert protocol.route(op.method, op.render_path(params))[0].name == op.name


@pytest.mark.parametrize("header", ["", "AWS4-HMAC-SHA256 Credential=a/b/c", "Basic abc",
                                    "AWS4-HMAC-SHA256 Credential=k/20200101/us-east-1/guardduty, "
                                    "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64])
def test_malformed_authorization(header):
    if header.endswith("0" * 64):
        with pytest.raises(sigv4.SignatureError, match="5 slash"):
            sigv4.parse_authorization(header)
        return
    with pytest.raises(sigv4.SignatureError):
        sigv4.parse_authorization(header)
