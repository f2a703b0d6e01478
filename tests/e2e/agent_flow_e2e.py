#!/usr/bin/python3
"""End-to-end test of the approval flow with a Python agent.

A Python agent (python3-grpcio) opens credbroker.v1.CredentialBroker.Session,
sends a hello and a need for AWS credentials; `credctl approve` answers and
the agent receives the grant. A second need is denied with `credctl deny
--reason ...` and the agent receives the reason.

The agent runs as its own process (this script with --agent): the broker
refuses approvals from the requesting agent's process and its descendants,
so credctl is started by the test's main process, next to the agent.

Stubs are generated at test time with protoc and grpc_python_plugin, as in
credential_service_e2e.py, whose Stubs and Broker helpers this reuses.

Usage: agent_flow_e2e.py --credbrokerd PATH --credctl PATH --source_dir DIR
Prints "N passed, M failed" last and exits non-zero on any failure.
"""

import argparse
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from credential_service_e2e import Broker, Stubs, random_string  # noqa: E402

ARGS = None
STUBS = None
BROKER = None
ROOT = None
TIMEOUT = 30


def agent_main(argv):
    """The agent process: one Session, the given needs, updates as JSON lines."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--agent", action="store_true")
    parser.add_argument("--stubs", required=True)
    parser.add_argument("--socket", required=True)
    parser.add_argument("--token_file", required=True)
    parser.add_argument("--session_key", required=True)
    parser.add_argument("--need", action="append", default=[],
                        help="NEED_ID|PROVIDER|ACTION")
    args = parser.parse_args(argv)
    sys.path.insert(0, args.stubs)
    import grpc
    from credbroker.v1 import credential_broker_pb2 as cb
    from credbroker.v1 import credential_broker_pb2_grpc as cb_grpc
    from credbroker.v1 import types_pb2 as types

    with open(args.token_file) as f:
        token = f.read().strip()
    outgoing = queue.Queue()
    outgoing.put(cb.SessionRequest(hello=cb.SessionHello(
        session_key=args.session_key, agent_name="python-e2e-agent")))
    open_needs = set()
    for spec in args.need:
        need_id, provider, action = spec.split("|", 2)
        open_needs.add(need_id)
        outgoing.put(cb.SessionRequest(need=types.CredentialNeeded(
            need_id=need_id, provider=provider, action=action,
            context={"region": "us-east-1"})))

    def requests():
        while True:
            item = outgoing.get()
            if item is None:
                return
            yield item

    decided = {types.REQUEST_STATE_GRANTED, types.REQUEST_STATE_DENIED,
               types.REQUEST_STATE_EXPIRED, types.REQUEST_STATE_CANCELLED}
    channel = grpc.insecure_channel("unix:" + args.socket)
    stub = cb_grpc.CredentialBrokerStub(channel)
    # The session is long-lived; this bound only keeps a broken test finite.
    responses = stub.Session(requests(), metadata=[("authorization", "Bearer " + token)],
                             timeout=120)
    try:
        for u in responses:
            print(json.dumps({
                "need_id": u.need_id,
                "request_id": u.request_id,
                "state": types.RequestState.Name(u.state),
                "missing_fields": list(u.missing_fields),
                "reason": u.reason,
                "grant": {
                    "grant_id": u.grant.grant_id,
                    "provider": u.grant.provider,
                    "scope": types.Scope.Name(u.grant.scope),
                    "values": dict(u.grant.values),
                } if u.HasField("grant") else None,
            }), flush=True)
            if u.state in decided:
                open_needs.discard(u.need_id)
            if not open_needs:
                break
    except grpc.RpcError as e:
        print(json.dumps({"error": e.code().name, "details": e.details()}), flush=True)
        return 1
    finally:
        outgoing.put(None)
        channel.close()
    return 0


class Agent:
    """The agent process, its updates read by a thread."""

    def __init__(self, session_key, needs):
        cmd = [sys.executable, os.path.abspath(__file__), "--agent",
               "--stubs", os.path.join(ROOT, "gen"), "--socket", BROKER.socket,
               "--token_file", os.path.join(BROKER.data_dir, "agent.token"),
               "--session_key", session_key]
        for n in needs:
            cmd += ["--need", n]
        self.err = open(os.path.join(ROOT, "agent-%s.err" % session_key), "wb")
        # A session of its own, as an agent in another terminal: an approver
        # in the agent's session would be refused as the agent.
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.err, start_new_session=True)
        self.updates = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.cond:
                self.updates.append(json.loads(line))
                self.cond.notify_all()
        with self.cond:
            self.updates.append({"eof": True})
            self.cond.notify_all()

    def wait(self, need_id, states, timeout=TIMEOUT):
        """The first update of need_id in one of `states` (None on timeout or exit)."""
        def find():
            for u in self.updates:
                if u.get("need_id") == need_id and u.get("state") in states:
                    return u
                if "error" in u or "eof" in u:
                    return u
            return None
        with self.cond:
            self.cond.wait_for(lambda: find() is not None, timeout)
            return find()

    def finish(self):
        try:
            code = self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.reader.join(5)
        self.err.close()
        return code


def credctl(*args):
    return subprocess.run(
        [ARGS.credctl, "--data_dir", BROKER.data_dir] + list(args),
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT)


class AgentFlowE2E(unittest.TestCase):
    KEY_ID = "AKIAIOSFODNN7EXAMPLE"

    @classmethod
    def setUpClass(cls):
        import grpc
        cls.secret = random_string(40)
        channel = grpc.insecure_channel("unix:" + BROKER.socket)
        grpc.channel_ready_future(channel).result(timeout=10)
        stub = STUBS.cs_grpc.CredentialServiceStub(channel)
        req = STUBS.cs.PutCredentialRequest(provider="aws")
        req.values["access_key_id"] = cls.KEY_ID
        req.values["secret_access_key"] = cls.secret
        stub.PutCredential(req, metadata=[("authorization", "Bearer " + BROKER.token("approver"))],
                           timeout=15)
        channel.close()

    def assertNoSecret(self, text):
        self.assertNotIn(self.secret, text, "a secret value was printed")

    def test_python_agent_gets_the_grant_approved_by_credctl(self):
        agent = Agent("py-grant", ["n1|aws|deploy to AWS in us-east-1"])
        pending = agent.wait("n1", {"REQUEST_STATE_PENDING_APPROVAL"})
        self.assertIsNotNone(pending)
        self.assertEqual(pending.get("state"), "REQUEST_STATE_PENDING_APPROVAL", pending)
        request_id = pending["request_id"]

        listed = credctl("pending", "--json")
        self.assertEqual(listed.returncode, 0, listed.stderr)
        self.assertIn(request_id, listed.stdout)
        self.assertIn("deploy to AWS in us-east-1", listed.stdout)

        approved = credctl("approve", request_id, "--scope", "once")
        self.assertEqual(approved.returncode, 0, approved.stderr)
        self.assertNoSecret(approved.stdout + approved.stderr)

        granted = agent.wait("n1", {"REQUEST_STATE_GRANTED"})
        self.assertIsNotNone(granted)
        self.assertEqual(granted.get("state"), "REQUEST_STATE_GRANTED",
                         {k: v for k, v in granted.items() if k != "grant"})
        grant = granted["grant"]
        self.assertEqual(grant["provider"], "aws")
        self.assertEqual(grant["scope"], "SCOPE_ONCE")
        self.assertEqual(grant["values"].get("access_key_id"), self.KEY_ID)
        self.assertTrue(grant["values"].get("secret_access_key") == self.secret,
                        "the grant does not carry the stored secret")
        self.assertEqual(agent.finish(), 0)

    def test_python_agent_is_denied_with_the_reason(self):
        agent = Agent("py-deny", ["n2|aws|delete every S3 bucket"])
        pending = agent.wait("n2", {"REQUEST_STATE_PENDING_APPROVAL"})
        self.assertIsNotNone(pending)
        self.assertEqual(pending.get("state"), "REQUEST_STATE_PENDING_APPROVAL", pending)
        denied_by = credctl("deny", pending["request_id"], "--reason",
                            "not without a backup")
        self.assertEqual(denied_by.returncode, 0, denied_by.stderr)
        denied = agent.wait("n2", {"REQUEST_STATE_DENIED"})
        self.assertIsNotNone(denied)
        self.assertEqual(denied.get("state"), "REQUEST_STATE_DENIED", denied)
        self.assertEqual(denied["reason"], "not without a backup")
        self.assertIsNone(denied["grant"])
        self.assertEqual(agent.finish(), 0)


def main():
    global ARGS, STUBS, BROKER, ROOT
    if "--agent" in sys.argv[1:]:
        return agent_main(sys.argv[1:])
    parser = argparse.ArgumentParser()
    parser.add_argument("--credbrokerd", required=True)
    parser.add_argument("--credctl", required=True)
    parser.add_argument("--source_dir", required=True)
    ARGS = parser.parse_args()

    ROOT = tempfile.mkdtemp(prefix="cbflow-", dir="/tmp")
    passed = failed = 0
    try:
        STUBS = Stubs(ARGS.source_dir, os.path.join(ROOT, "gen"))
        BROKER = Broker(ARGS.credbrokerd, ROOT)
        BROKER.start()
        try:
            suite = unittest.defaultTestLoader.loadTestsFromTestCase(AgentFlowE2E)
            result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
            failed = len(result.failures) + len(result.errors)
            passed = result.testsRun - failed
        finally:
            code = BROKER.stop()
        if code != 0:
            print("FAIL: credbrokerd exited with %d on SIGTERM" % code)
            failed += 1
        secret = AgentFlowE2E.__dict__.get("secret")
        if secret and secret.encode() in BROKER.output():
            print("FAIL: a secret value appears in the daemon's output")
            failed += 1
    except Exception as e:  # Setup failures count as one failure.
        print("FAIL: %s: %s" % (type(e).__name__, e))
        failed += 1
        if BROKER is not None:
            BROKER.kill()
    finally:
        shutil.rmtree(ROOT, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
