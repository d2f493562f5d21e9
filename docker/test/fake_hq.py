#!/usr/bin/env python3
"""A tiny stand-in for Interstella HQ, for container tests and the compose stack.

Standard library only (it runs on the host in scripts/container-test.sh and
in a stock python image in docker/compose.yaml until the real `hq` binary
takes its place). It plays three parts:

* the fulfillment API: ``POST /receiving/`` with header ``x-api-key``;
  records each call and answers 200 (403 on a wrong key);
* the SNS stand-in (``AWS_ENDPOINT_URL_SNS``): serves its signing
  certificate at ``/SimpleNotificationService-<hex>.pem`` and answers the
  ``SubscribeURL`` at ``/confirm``;
* the order feed: ``POST /_publish`` with a JSON body
  ``{"endpoint": URL, "type": "Notification"|"SubscriptionConfirmation",
  "message": STRING}`` makes it sign an SNS envelope (SignatureVersion 2,
  SHA256withRSA, the string-to-sign in byte order) and POST it to URL the
  way SNS does (``Content-Type: text/plain; charset=UTF-8`` and the
  ``x-amz-sns-*`` headers); it answers with the endpoint's status and body.

``GET /_records`` returns what it saw; ``DELETE /_records`` forgets it.

Options: --listen HOST:PORT (repeatable), --public-url (how the services
reach it: the SigningCertURL and SubscribeURL are built on it), --api-key,
--tls-listen HOST:PORT with --tls-cert/--tls-key (an HTTPS listener too).
"""

import argparse
import base64
import hashlib
import json
import os
import signal
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
TOPIC_ARN = "arn:aws:sns:us-east-2:123456789012:interstella-orders"
CERT_NAME = "SimpleNotificationService-0123456789abcdef0123456789abcdef.pem"
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


class Signer:
    """PKCS#1 v1.5 SHA-256 signatures with the test-only key, in pure Python."""

    def __init__(self, path):
        with open(path, encoding="utf-8") as handle:
            ident = json.load(handle)
        self.cert_pem = ident["certificate_pem"].encode()
        self.n = int(ident["n"], 16)
        self.d = int(ident["d"], 16)
        self.size = (self.n.bit_length() + 7) // 8

    def sign(self, data: bytes) -> str:
        digest = SHA256_DIGEST_INFO + hashlib.sha256(data).digest()
        padded = b"\x00\x01" + b"\xff" * (self.size - len(digest) - 3) + b"\x00" + digest
        signature = pow(int.from_bytes(padded, "big"), self.d, self.n)
        return base64.b64encode(signature.to_bytes(self.size, "big")).decode()


def string_to_sign(envelope):
    """The fields SNS signs, in byte order, each as `key\\nvalue\\n`."""
    if envelope["Type"] == "Notification":
        keys = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        keys = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    return "".join(f"{k}\n{envelope[k]}\n" for k in keys if k in envelope)


class State:
    def __init__(self, api_key, public_url, signer):
        self.api_key = api_key
        self.public_url = public_url.rstrip("/")
        self.signer = signer
        self.lock = threading.Lock()
        self.receiving = []
        self.confirmations = []
        self.rejected = 0

    def envelope(self, kind, message):
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        env = {
            "Type": kind,
            "MessageId": str(uuid.uuid4()),
            "TopicArn": TOPIC_ARN,
            "Message": message,
            "Timestamp": now,
            "SignatureVersion": "2",
            "SigningCertURL": f"{self.public_url}/{CERT_NAME}",
        }
        if kind == "SubscriptionConfirmation":
            token = uuid.uuid4().hex
            env["Token"] = token
            env["SubscribeURL"] = (
                f"{self.public_url}/confirm?Action=ConfirmSubscription"
                f"&TopicArn={TOPIC_ARN}&Token={token}"
            )
        else:
            env["UnsubscribeURL"] = f"{self.public_url}/unsubscribe?SubscriptionArn={TOPIC_ARN}:1"
        env["Signature"] = self.signer.sign(string_to_sign(env).encode())
        return env


class Handler(BaseHTTPRequestHandler):
    server_version = "fake-hq/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("fake-hq: %s %s\n" % (self.address_string(), fmt % args))

    def reply(self, status, body, content_type="text/plain; charset=utf-8"):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    @property
    def state(self) -> State:
        return self.server.state  # type: ignore[attr-defined]

    def do_GET(self):
        path = urlsplit(self.path).path
        if path in ("/", "/health"):
            self.reply(200, "fake HQ\n")
        elif path == f"/{CERT_NAME}":
            self.reply(200, self.state.signer.cert_pem, "application/x-pem-file")
        elif path == "/confirm":
            query = parse_qs(urlsplit(self.path).query)
            with self.state.lock:
                self.state.confirmations.append(query.get("Token", [""])[0])
            self.reply(200, "<ConfirmSubscriptionResponse/>", "text/xml")
        elif path == "/_records":
            with self.state.lock:
                records = {
                    "receiving": self.state.receiving,
                    "confirmations": self.state.confirmations,
                    "rejected": self.state.rejected,
                }
            self.reply(200, json.dumps(records), "application/json")
        else:
            self.reply(404, "not found\n")

    def do_DELETE(self):
        if urlsplit(self.path).path == "/_records":
            with self.state.lock:
                self.state.receiving.clear()
                self.state.confirmations.clear()
                self.state.rejected = 0
            self.reply(200, "forgotten\n")
        else:
            self.reply(404, "not found\n")

    def do_POST(self):
        path = urlsplit(self.path).path
        data = self.body()
        if path.rstrip("/") == "/receiving":
            if self.headers.get("x-api-key") != self.state.api_key:
                with self.state.lock:
                    self.state.rejected += 1
                self.reply(403, '{"message":"Forbidden"}', "application/json")
                return
            try:
                order = json.loads(data or b"null")
            except ValueError:
                self.reply(400, "not JSON\n")
                return
            with self.state.lock:
                self.state.receiving.append(order)
            self.reply(200, '{"status":"received"}', "application/json")
        elif path == "/_publish":
            self.publish(json.loads(data or b"{}"))
        else:
            self.reply(404, "not found\n")

    def publish(self, request):
        kind = request.get("type", "Notification")
        message = request.get("message", "")
        if not isinstance(message, str):
            message = json.dumps(message)
        envelope = self.state.envelope(kind, message)
        outbound = urllib.request.Request(
            request["endpoint"],
            data=json.dumps(envelope).encode(),
            method="POST",
            headers={
                "Content-Type": "text/plain; charset=UTF-8",
                "User-Agent": "Amazon Simple Notification Service Agent",
                "x-amz-sns-message-type": kind,
                "x-amz-sns-message-id": envelope["MessageId"],
                "x-amz-sns-topic-arn": TOPIC_ARN,
            },
        )
        try:
            with urllib.request.urlopen(outbound, timeout=15) as answer:
                status, text = answer.status, answer.read().decode(errors="replace")
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read().decode(errors="replace")
        except OSError as error:
            status, text = 0, f"delivery failed: {error}"
        self.reply(200, json.dumps({"status": status, "body": text}), "application/json")


def serve(address, state, tls=None):
    host, _, port = address.rpartition(":")
    server = ThreadingHTTPServer((host or "0.0.0.0", int(port)), Handler)
    server.daemon_threads = True
    server.state = state  # type: ignore[attr-defined]
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    print(f"fake-hq: listening on {'https' if tls else 'http'}://{address}", flush=True)
    return server


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--listen", action="append", default=[])
    parser.add_argument("--tls-listen", action="append", default=[])
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--public-url", default=os.environ.get("PUBLIC_URL", "http://127.0.0.1:8090"))
    parser.add_argument("--api-key", default=os.environ.get("API_KEY", "local-dev-key"))
    parser.add_argument("--signing", default=os.path.join(HERE, "sns-test-signing.json"))
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # PID 1 in a container
    state = State(args.api_key, args.public_url, Signer(args.signing))
    servers = [serve(a, state) for a in (args.listen or ["0.0.0.0:8090"])]
    servers += [serve(a, state, (args.tls_cert, args.tls_key)) for a in args.tls_listen]
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        for server in servers:
            server.shutdown()


if __name__ == "__main__":
    main()
