#!/usr/bin/python3
"""End-to-end test of credbroker.v1.CredentialService from Python.

Generates the Python stubs from protos/ with protoc and grpc_python_plugin
into a temporary directory, starts the real credbrokerd on a temporary data
directory, and talks to it over its Unix socket with Debian's python3-grpcio.

Usage: credential_service_e2e.py --credbrokerd PATH --source_dir DIR
Prints "N passed, M failed" last and exits non-zero on any failure.
"""

import argparse
import glob
import os
import secrets
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import threading
import unittest

ARGS = None
STUBS = None  # Generated modules, filled by setUpModule.
BROKER = None


def random_string(n, alphabet=string.ascii_letters + string.digits):
    return "".join(secrets.choice(alphabet) for _ in range(n))


class Stubs:
    """Generates and imports the credbroker.v1 and google.rpc modules."""

    def __init__(self, source_dir, out_dir):
        protos = sorted(glob.glob(os.path.join(source_dir, "protos/credbroker/v1/*.proto")))
        rpc = sorted(glob.glob(os.path.join(source_dir, "third_party/googleapis/google/rpc/*.proto")))
        if not protos or not rpc:
            raise RuntimeError("no .proto files under %s" % source_dir)
        cmd = [
            "/usr/bin/protoc",
            "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin",
            "--python_out=" + out_dir,
            "--grpc_python_out=" + out_dir,
            "-I", os.path.join(source_dir, "protos"),
            "-I", os.path.join(source_dir, "third_party/googleapis"),
        ] + protos + rpc
        os.makedirs(out_dir, exist_ok=True)
        subprocess.run(cmd, check=True, timeout=60)
        sys.path.insert(0, out_dir)
        import grpc  # noqa: F401  (fails early when python3-grpcio is missing)
        from credbroker.v1 import credential_service_pb2, credential_service_pb2_grpc
        from credbroker.v1 import credential_broker_pb2, credential_broker_pb2_grpc
        from credbroker.v1 import types_pb2
        from google.rpc import error_details_pb2, status_pb2
        self.cs = credential_service_pb2
        self.cs_grpc = credential_service_pb2_grpc
        self.cb = credential_broker_pb2
        self.cb_grpc = credential_broker_pb2_grpc
        self.types = types_pb2
        self.status = status_pb2
        self.details = error_details_pb2


class Broker:
    """credbrokerd on a temporary data directory, stopped with SIGTERM."""

    def __init__(self, binary, root):
        self.binary = binary
        self.data_dir = os.path.join(root, "data")
        self.out_path = os.path.join(root, "broker.out")
        self.err_path = os.path.join(root, "broker.err")
        self.proc = None
        self.ready = threading.Event()

    @property
    def socket(self):
        return os.path.join(self.data_dir, "broker.sock")

    def token(self, role):
        with open(os.path.join(self.data_dir, role + ".token")) as f:
            return f.read().strip()

    def start(self, timeout=20):
        self.err_file = open(self.err_path, "wb")
        self.proc = subprocess.Popen(
            [self.binary, "--data_dir", self.data_dir, "--key_source=file",
             "--approval_factor=none"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.err_file)
        self.out_file = open(self.out_path, "wb")

        def pump():
            for line in self.proc.stdout:
                self.out_file.write(line)
                self.out_file.flush()
                if line.strip() == b"ready":
                    self.ready.set()
            self.ready.set()  # Output ended: no point waiting longer.

        self.reader = threading.Thread(target=pump, daemon=True)
        self.reader.start()
        if not self.ready.wait(timeout) or self.proc.poll() is not None:
            self.kill()
            raise RuntimeError("credbrokerd did not become ready:\n" + self.stderr())

    def stderr(self):
        self.err_file.flush()
        with open(self.err_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def output(self):
        data = b""
        for p in (self.out_path, self.err_path):
            with open(p, "rb") as f:
                data += f.read()
        return data

    def stop(self, timeout=20):
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        self.reader.join(5)
        self.out_file.close()
        self.err_file.close()
        return code

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class CredentialServiceE2E(unittest.TestCase):
    AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"

    @classmethod
    def setUpClass(cls):
        import grpc
        cls.grpc = grpc
        cls.channel = grpc.insecure_channel("unix:" + BROKER.socket)
        grpc.channel_ready_future(cls.channel).result(timeout=10)
        cls.stub = STUBS.cs_grpc.CredentialServiceStub(cls.channel)
        cls.approver = [("authorization", "Bearer " + BROKER.token("approver"))]
        cls.agent = [("authorization", "Bearer " + BROKER.token("agent"))]
        cls.secret = random_string(40)  # An AWS-shaped secret, unique to this run.

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()

    def call(self, method, request, metadata=None):
        return getattr(self.stub, method)(
            request, metadata=self.approver if metadata is None else metadata, timeout=15)

    def put_aws(self, profile="", key_id=AWS_KEY_ID, secret=None):
        req = STUBS.cs.PutCredentialRequest(provider="aws", profile=profile)
        req.values["access_key_id"] = key_id
        req.values["secret_access_key"] = secret or self.secret
        return self.call("PutCredential", req)

    def assertNoSecret(self, message):
        # assertFalse, not assertNotIn: a failure must not print the secret.
        self.assertFalse(self.secret.encode() in message.SerializeToString(),
                         "a secret value came back in a response")

    def test_providers(self):
        resp = self.call("ListProviders", STUBS.cs.ListProvidersRequest())
        ids = {p.id for p in resp.providers}
        for want in ("aws", "gcp", "azure", "digitalocean", "mongodb-atlas", "redis-cloud",
                     "netlify", "auth0", "vercel", "github", "slack", "custom"):
            self.assertIn(want, ids)

    def test_set_list_get_validate_delete(self):
        put = self.put_aws(profile="py")
        self.assertNoSecret(put)
        self.assertEqual(put.credential.provider, "aws")
        self.assertEqual(put.credential.profile, "py")
        self.assertEqual(put.credential.version, 1)
        self.assertEqual(put.credential.readiness, STUBS.types.READINESS_READY)
        shown = {f.name: f for f in put.credential.fields}
        self.assertEqual(shown["access_key_id"].display, "AKIA…MPLE")
        self.assertTrue(shown["secret_access_key"].set)
        self.assertTrue(shown["secret_access_key"].sensitive)

        listed = self.call("ListCredentials", STUBS.cs.ListCredentialsRequest(provider="aws"))
        self.assertNoSecret(listed)
        self.assertIn(("aws", "py"), {(c.provider, c.profile) for c in listed.credentials})

        got = self.call("GetCredential", STUBS.cs.GetCredentialRequest(provider="aws", profile="py"))
        self.assertNoSecret(got)
        self.assertEqual(got.version, 1)
        self.assertEqual(got.fingerprint, put.credential.fingerprint)

        valid = self.call("ValidateCredential",
                          STUBS.cs.ValidateCredentialRequest(provider="aws", profile="py"))
        self.assertTrue(valid.valid)
        self.assertEqual(valid.readiness, STUBS.types.READINESS_READY)

        candidate = STUBS.cs.ValidateCredentialRequest(provider="aws")
        candidate.values["access_key_id"] = "AKIA-bad"
        diagnosed = self.call("ValidateCredential", candidate)
        self.assertFalse(diagnosed.valid)
        self.assertIn("access_key_id", {f.field for f in diagnosed.findings})

        deleted = self.call("DeleteCredential",
                            STUBS.cs.DeleteCredentialRequest(provider="aws", profile="py"))
        self.assertEqual(deleted.versions_deleted, 1)
        with self.assertRaises(self.grpc.RpcError) as ctx:
            self.call("GetCredential", STUBS.cs.GetCredentialRequest(provider="aws", profile="py"))
        self.assertEqual(ctx.exception.code(), self.grpc.StatusCode.NOT_FOUND)

    def test_invalid_argument_carries_field_violations(self):
        req = STUBS.cs.PutCredentialRequest(provider="aws", profile="bad")
        req.values["access_key_id"] = "AKIA123"
        req.values["secret_access_key"] = self.secret
        with self.assertRaises(self.grpc.RpcError) as ctx:
            self.call("PutCredential", req)
        err = ctx.exception
        self.assertEqual(err.code(), self.grpc.StatusCode.INVALID_ARGUMENT)
        self.assertFalse(self.secret in (err.details() or ""), "secret in the message")
        raw = dict(err.trailing_metadata() or ()).get("grpc-status-details-bin")
        self.assertIsNotNone(raw, "no grpc-status-details-bin trailer")
        status = STUBS.status.Status.FromString(raw)
        self.assertEqual(status.code, self.grpc.StatusCode.INVALID_ARGUMENT.value[0])
        violations = []
        for detail in status.details:
            bad_request = STUBS.details.BadRequest()
            if detail.Unpack(bad_request):
                violations.extend(bad_request.field_violations)
        self.assertTrue(violations, "no google.rpc.BadRequest in the details")
        fields = [v.field for v in violations]
        self.assertTrue(any("access_key_id" in f for f in fields), fields)
        for v in violations:
            self.assertTrue(v.description)
            self.assertFalse(self.secret in v.description, "secret in a violation")
        # Nothing was stored.
        with self.assertRaises(self.grpc.RpcError) as ctx:
            self.call("GetCredential", STUBS.cs.GetCredentialRequest(provider="aws", profile="bad"))
        self.assertEqual(ctx.exception.code(), self.grpc.StatusCode.NOT_FOUND)

        unknown = STUBS.cs.PutCredentialRequest(provider="no-such-cloud")
        unknown.values["x"] = "y"
        with self.assertRaises(self.grpc.RpcError) as ctx:
            self.call("PutCredential", unknown)
        self.assertEqual(ctx.exception.code(), self.grpc.StatusCode.INVALID_ARGUMENT)

    def test_custom_and_keep_existing(self):
        first = STUBS.cs.PutCredentialRequest(provider="custom", profile="pyapp")
        first.values["api_key"] = "py-" + random_string(24)
        self.call("PutCredential", first)
        second = STUBS.cs.PutCredentialRequest(provider="custom", profile="pyapp",
                                               keep_existing=True)
        second.values["db_password"] = "py-" + random_string(24)
        resp = self.call("PutCredential", second)
        self.assertEqual(resp.credential.version, 2)
        self.assertEqual({f.name for f in resp.credential.fields}, {"api_key", "db_password"})
        old = self.call("GetCredential", STUBS.cs.GetCredentialRequest(
            provider="custom", profile="pyapp", version=1))
        self.assertEqual({f.name for f in old.fields}, {"api_key"})

    def test_tokens_and_roles(self):
        with self.assertRaises(self.grpc.RpcError) as ctx:
            self.call("ListCredentials", STUBS.cs.ListCredentialsRequest(), metadata=[])
        self.assertEqual(ctx.exception.code(), self.grpc.StatusCode.UNAUTHENTICATED)
        with self.assertRaises(self.grpc.RpcError) as ctx:
            self.call("ListCredentials", STUBS.cs.ListCredentialsRequest(),
                      metadata=[("authorization", "Bearer " + random_string(43))])
        self.assertEqual(ctx.exception.code(), self.grpc.StatusCode.UNAUTHENTICATED)
        with self.assertRaises(self.grpc.RpcError) as ctx:
            req = STUBS.cs.PutCredentialRequest(provider="aws", profile="agent")
            req.values["access_key_id"] = self.AWS_KEY_ID
            req.values["secret_access_key"] = self.secret
            self.call("PutCredential", req, metadata=self.agent)
        self.assertEqual(ctx.exception.code(), self.grpc.StatusCode.PERMISSION_DENIED)
        with self.assertRaises(self.grpc.RpcError) as ctx:
            self.call("ListCredentials", STUBS.cs.ListCredentialsRequest(), metadata=self.agent)
        self.assertEqual(ctx.exception.code(), self.grpc.StatusCode.PERMISSION_DENIED)

        # The agent's own service answers the agent (the grant does not
        # exist), and refuses the approver.
        broker = STUBS.cb_grpc.CredentialBrokerStub(self.channel)
        with self.assertRaises(self.grpc.RpcError) as ctx:
            broker.ReleaseGrant(STUBS.cb.ReleaseGrantRequest(grant_id="g"),
                                metadata=self.approver, timeout=15)
        self.assertEqual(ctx.exception.code(), self.grpc.StatusCode.PERMISSION_DENIED)
        with self.assertRaises(self.grpc.RpcError) as ctx:
            broker.ReleaseGrant(STUBS.cb.ReleaseGrantRequest(grant_id="g"),
                                metadata=self.agent, timeout=15)
        self.assertEqual(ctx.exception.code(), self.grpc.StatusCode.NOT_FOUND)


def main():
    global ARGS, STUBS, BROKER
    parser = argparse.ArgumentParser()
    parser.add_argument("--credbrokerd", required=True)
    parser.add_argument("--source_dir", required=True)
    ARGS = parser.parse_args()

    # A short path under /tmp keeps the socket far below sun_path's limit.
    root = tempfile.mkdtemp(prefix="cbe2e-", dir="/tmp")
    passed = failed = 0
    try:
        STUBS = Stubs(ARGS.source_dir, os.path.join(root, "gen"))
        BROKER = Broker(ARGS.credbrokerd, root)
        BROKER.start()
        try:
            suite = unittest.defaultTestLoader.loadTestsFromTestCase(CredentialServiceE2E)
            result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
            failed = len(result.failures) + len(result.errors)
            passed = result.testsRun - failed
            # No secret the tests sent may appear in the daemon's output.
            secret = CredentialServiceE2E.__dict__.get("secret")
        finally:
            code = BROKER.stop()
        if code != 0:
            print("FAIL: credbrokerd exited with %d on SIGTERM" % code)
            failed += 1
        else:
            passed += 1
        if os.path.exists(BROKER.socket):
            print("FAIL: the socket was not removed at shutdown")
            failed += 1
        if secret and secret.encode() in BROKER.output():
            print("FAIL: a secret value appears in the daemon's output")
            failed += 1
    except Exception as e:  # Setup failures count as one failure.
        print("FAIL: %s: %s" % (type(e).__name__, e))
        failed += 1
        if BROKER is not None:
            BROKER.kill()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
