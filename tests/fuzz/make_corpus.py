#!/usr/bin/env python3
"""Writes the seed corpora in tests/fuzz/corpus/<target>/ (fake values only:
documentation examples and made-up strings, never a real secret). "@@" in a
secret becomes the fuzzers' secret marker. Run from anywhere; rewrites the
seeds it owns and leaves other files alone."""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))

PEM = ("-----BEGIN PRIVATE KEY-----\n"
       "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDFAKEFAKEFAKEFAKE\n"
       "FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFA==\n"
       "-----END PRIVATE KEY-----\n")
EC_PEM = ("-----BEGIN PRIVATE KEY-----\n"
          "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgFAKEFAKEFAKEFAKE\n"
          "-----END PRIVATE KEY-----\n")


def gcp_key(**over):
    key = {
        "type": "service_account",
        "project_id": "my-project-123",
        "private_key_id": "0123456789abcdef0123456789abcdef01@@",
        "private_key": PEM,
        "client_email": "monk-deployment@my-project-123.iam.gserviceaccount.com",
        "client_id": "123456789012345678901",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    for k, v in over.items():
        if v is None:
            key.pop(k, None)
        else:
            key[k] = v
    return json.dumps(key, indent=2)


AZ_CLI = json.dumps({
    "appId": "11111111-2222-3333-4444-555555555555",
    "displayName": "monk-deployment",
    "password": "abc8Q~FAKEfakeFAKE@@fakeFAKEfake.x",
    "tenant": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
}, indent=2)
AZ_SDK = json.dumps({
    "clientId": "11111111-2222-3333-4444-555555555555",
    "clientSecret": "abc8Q~FAKEfakeFAKE@@fakeFAKEfake.x",
    "subscriptionId": "01234567-89ab-cdef-0123-456789abcdef",
    "tenantId": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
    "resourceGroup": "monk-rg",
}, indent=2)

PROVIDER = {
    "aws_valid": "aws\naccess_key_id=AKIAIOSFODNN7EXAMPLE\n"
                 "secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCY@@\n"
                 "region=eu-west-2\n",
    "aws_temp": "aws\naccess_key_id=ASIAIOSFODNN7EXAMPLE\n"
                "secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
                "session_token=IQoJb3JpZ2luX2VjEXAMPLE@@TOKEN+/AAAA==\n"
                "expires_at=2026-11-26T12:00:00Z\n",
    "aws_near_miss": "aws\naccess_key_id= akiaiosfodnn7exampl\n"
                     "secret_access_key=wJalrXUtnFEMI-K7MDENG_@@ \n"
                     "region=us-east-1a\nbogus=1\n",
    "gcp_pasted": "gcp\nregion=europe-west4\n\f" + gcp_key(),
    "gcp_both": "gcp\nservice_account_json={\"type\":\"service_account\"}\n"
                "project_id=other-project-1\n\f" + gcp_key(),
    "azure_fields": "azure\nclient_id=11111111-2222-3333-4444-555555555555\n"
                    "client_secret=abc8Q~FAKEfakeFAKE@@fakeFAKEfake.x\n"
                    "tenant_id=contoso.onmicrosoft.com\n"
                    "subscription_id=01234567-89ab-cdef-0123-456789abcdef\n"
                    "resource_group=Monk_rg-(prod).1\n",
    "azure_file": "azure\nsubscription_id=01234567-89ab-cdef-0123-456789abcdef\n"
                  "resource_group=monk-rg\n\f" + AZ_CLI,
    "digitalocean": "digitalocean\ntoken=dop_v1_" + "0" * 30 + "@@" + "f" * 32 +
                    "\nregion=ams3\n",
    "digitalocean_near_miss": "digitalocean\ntoken=dor_v1_" + "a" * 62 + "@@\n"
                              "region=New York 1\n",
    "mongodb_atlas": "mongodb-atlas\norganization=Acme Corp\nclient_id=abcdwxyz\n"
                     "client_secret=11111111-2222-3333-4444-55555555@@\n",
    "redis_cloud": "redis-cloud\n"
                   "account_key=A1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvWxYz0123456789@@\n"
                   "user_key=Z9y8X7w6V5u4T3s2R1q0PoNmLkJiHgFeDcBa9876543210zyx\n"
                   "database_password=Tr0ub4dor&3-horse@@\n",
    "netlify": "netlify\naccess_token=nfp_FAKEfakeFAKEfakeFAKE@@fakeFAKEfake12\n",
    "auth0": "auth0\ndomain=https://your-tenant.auth0.com/\nclient_id=FAKEfakeFAKEfakeFAKEfakeFAKEfake\n"
             "client_secret=FAKEfakeFAKEfake@@FAKEfakeFAKEfakeFAKEfakeFAKEfake-_12\n",
    "vercel": "vercel\ntoken=FAKEfakeFAKEfake@@FAKEfake\nteam_id=team_FAKEfakeFAKEfake\n"
              "expires_at=2026-12-31\n",
    "github": "github\ntoken=github_pat_11FAKEFAKE0@@_FAKEfakeFAKEfakeFAKEfake\n"
              "expires_at=2026-02-30\n",
    "github_classic": "github\ntoken=ghp_FAKEfakeFAKEfake@@FAKEfakeFAKEfake12\n",
    "slack": "slack\nwebhook_url=https://hooks.slack.com/services/T00000000/"
             "B00000000/XXXXXXXXXXXX@@XXXXXXXXXX\n",
    "custom": "custom\napi_key=FAKE@@key\nendpoint=https://example.com\n",
    "custom_bad_names": "custom\nBad Name=x@@\n=empty name\nok_name=\n",
    "unknown_provider": "zzz\nx=y\n\f{}",
}

GCP = {
    "valid": gcp_key(),
    "authorized_user": json.dumps({"type": "authorized_user",
                                   "client_id": "x.apps.googleusercontent.com",
                                   "client_secret": "FAKE@@secret",
                                   "refresh_token": "1//FAKE@@"}),
    "ec_key": gcp_key(private_key=EC_PEM),
    "double_escaped": gcp_key(private_key=PEM.replace("\n", "\\n")),
    "missing_key": gcp_key(private_key=None),
    "bad_email": gcp_key(client_email="someone@example.com"),
    "default_sa": gcp_key(client_email="1234-compute@developer.gserviceaccount.com"),
    "truncated": gcp_key()[:150],
    "api_key": "AIzaSyFAKEfakeFAKEfake@@FAKEfakeFAKEfak",
    "pem_only": PEM.replace("FAKEFAKE", "FAKE@@", 1),
    "array": "[1, 2, 3]",
    "bom": "\ufeff" + gcp_key(),
    "padded_ids": gcp_key(project_id=" my-project-123\n",
                          client_email="\u00a0monk@my-project-123.iam.gserviceaccount.com "),
    "only_bom": "\ufeff",
}

AZURE = {
    "cli": AZ_CLI,
    "sdk": AZ_SDK,
    "wrong_types": json.dumps({"clientId": 12, "clientSecret": ["@@"],
                               "tenantId": None}),
    "not_json": "clientSecret: abc@@",
    "string": "\"abc@@\"",
    "nothing_known": json.dumps({"foo": "bar@@"}),
}

JSON = {
    "object": '{"a": [1, -2.5e10, true, false, null], "b": {"c": "d@@"}}',
    "unicode": '"\\u00e9\\ud83d\\ude00 caf\u00e9 @@"',
    "lone_surrogate": '"\\ud800"',
    "leading_zero": "[01]",
    "trailing_comma": "[1,]",
    "duplicate_key": '{"a": 1, "a": 2}',
    "deep": "[" * 70 + "]" * 70,
    "big_number": "1e400",
    "control_char": '"a\tb@@"',
    "bad_escape": '"\\x41@@"',
}


def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7f) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def record(pairs):
    out = bytearray([1])
    for k, v in pairs:
        out += varint(len(k)) + k + varint(len(v)) + v
    return bytes(out)


RECORD = {
    "empty": bytes([1]),
    "aws": record([(b"access_key_id", b"AKIAIOSFODNN7EXAMPLE"),
                   (b"secret_access_key", b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")]),
    "long_value": record([(b"k", b"v" * 200)]),
    "unsorted": record([(b"b", b"1"), (b"a", b"2")]),
    "truncated": record([(b"name", b"value")])[:-2],
    "bad_version": b"\x02\x01a\x01b",
    "overlong_varint": b"\x01\xff\xff\xff\xff\xff\x01",
    "pairs": b"name\x00value\x00other\x00\x00",
}


def write(target, seeds):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        if isinstance(data, str):
            data = data.encode("utf-8")
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


write("provider", PROVIDER)
write("gcp_key", GCP)
write("azure_file", AZURE)
write("json", JSON)
write("record", RECORD)
