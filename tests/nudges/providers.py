"""Local stand-ins for the channel providers the gateways talk to.

HTTP providers (SendGrid, Mailgun, Amazon SES, Twilio, Intercom, push services) are answered by
pytest-httpserver's `httpserver` fixture in each test, with the documented bodies below. SMTP has
`SmtpServer`, a small threaded server speaking enough of RFC 5321 for smtplib. Push subscriptions
come from `PushSubscriber`, a browser's key pair, which can decrypt what the push service got.
"""

import base64
import json
import os
import socketserver
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage

import http_ece
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid

from nudges.gateways.base import Message, PushTarget, Recipient
from tests.factories import CANARY_EMAIL, CANARY_FIRST_NAME, CANARY_LAST_NAME, CANARY_NAME, CANARY_PHONE

# --- What the pipeline hands a gateway ------------------------------------------------------------


def message_for(*, nudge_id: int = 4242, workspace_id: int = 1, channel: str = "email", **fields) -> Message:
    """A rendered nudge whose contact variable ({{ first_name }}) the gateway fills."""
    values = {
        "idempotency_key": f"7:{nudge_id}:step:connect-data",
        "subject": "Finish connecting your data",
        "body": "Hi {{ first_name }}, you are 60% through Getting started.",
        "cta_text": "Continue",
        "cta_url": "https://app.example.com/t/signed-link",
        **fields,
    }
    return Message(nudge_id=nudge_id, workspace_id=workspace_id, channel=channel, **values)


def recipient_for(*, push_targets: tuple[PushTarget, ...] = (), **fields) -> Recipient:
    """Contact data made of the PII canaries (tests/conftest.py fails a run that logs them)."""
    values = {
        "end_user_id": 77,
        "external_id": "user-77",
        "email": CANARY_EMAIL,
        "phone": CANARY_PHONE,
        "first_name": CANARY_FIRST_NAME,
        "last_name": CANARY_LAST_NAME,
        "name": CANARY_NAME,
        "locale": "en-US",
        **fields,
    }
    return Recipient(push_targets=push_targets, **values)


# --- Documented answers ---------------------------------------------------------------------------

SENDGRID_BAD_REQUEST = {
    "errors": [
        {
            "message": "Does not contain a valid address.",
            "field": "personalizations.0.to.0.email",
            "help": "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html",
        }
    ]
}
SENDGRID_UNAUTHORIZED = {
    "errors": [{"field": None, "message": "The provided authorization grant is invalid, expired, or revoked"}]
}
SENDGRID_TOO_MANY = {"errors": [{"field": None, "message": "too many requests"}]}
MAILGUN_QUEUED = {"id": "<20260102120000.1.ABCDEF@mg.example.com>", "message": "Queued. Thank you."}


def twilio_message(*, sid: str = "SM0123456789abcdef0123456789abcdef", status: str = "queued") -> dict:
    return {"sid": sid, "status": status, "num_segments": "1", "error_code": None, "error_message": None}


def twilio_error(*, code: int, message: str, status: int) -> dict:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def intercom_error(*, code: str, message: str) -> dict:
    return {"type": "error.list", "request_id": "req-0001", "errors": [{"code": code, "message": message}]}


# --- SMTP -----------------------------------------------------------------------------------------


class _SmtpHandler(socketserver.StreamRequestHandler):
    def reply(self, code: int, text: str) -> None:
        self.wfile.write(f"{code} {text}\r\n".encode())

    def handle(self) -> None:
        fake: SmtpServer = self.server.fake  # type: ignore[attr-defined]
        envelope: dict = {"from": "", "to": []}
        self.reply(220, "fake.smtp ESMTP ready")
        while line := self.rfile.readline():
            command = line.decode("utf-8", "replace").rstrip("\r\n")
            verb = command.split(" ", 1)[0].split(":", 1)[0].upper()
            if verb in fake.replies:
                self.reply(*fake.replies[verb])
                continue
            if verb == "EHLO":
                self.wfile.write(b"250-fake.smtp\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n")
            elif verb == "HELO":
                self.reply(250, "fake.smtp")
            elif verb == "AUTH":
                _, username, password = base64.b64decode(command.split()[-1]).decode().split("\0")
                fake.logins.append(username)
                ok = (username, password) == fake.credentials
                self.reply(*((235, "2.7.0 accepted") if ok else (535, "5.7.8 bad credentials")))
            elif verb == "MAIL":
                envelope = {"from": command.split(":", 1)[1].strip(), "to": []}
                self.reply(250, "2.1.0 ok")
            elif verb == "RCPT":
                envelope["to"].append(command.split(":", 1)[1].strip())
                self.reply(250, "2.1.5 ok")
            elif verb == "DATA":
                self.reply(354, "end with <CRLF>.<CRLF>")
                data = bytearray()
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                fake.messages.append(
                    {**envelope, "message": message_from_bytes(bytes(data), policy=policy.default)}
                )
                self.reply(250, "2.0.0 queued")
            elif verb in ("RSET", "NOOP"):
                self.reply(250, "2.0.0 ok")
            elif verb == "QUIT":
                self.reply(221, "2.0.0 bye")
                return
            else:
                self.reply(502, "5.5.2 not implemented")


class _ThreadingServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class SmtpServer:
    """`with SmtpServer() as smtp:` listens on 127.0.0.1:`smtp.port`. `messages` holds what it
    received ({"from", "to", "message"}); `replies` overrides a verb's answer, e.g.
    {"RCPT": (550, "5.1.1 no such user")}; `credentials` is the login it accepts."""

    def __init__(self, *, credentials: tuple[str, str] = ("mailer", "smtp-password")):
        self.credentials = credentials
        self.messages: list[dict] = []
        self.logins: list[str] = []
        self.replies: dict[str, tuple[int, str]] = {}
        self._server = _ThreadingServer(("127.0.0.1", 0), _SmtpHandler)
        self._server.fake = self  # type: ignore[attr-defined]
        self.port = self._server.server_address[1]

    def __enter__(self) -> "SmtpServer":
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def last(self) -> EmailMessage:
        return self.messages[-1]["message"]


# --- Web push -------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class PushSubscriber:
    """A browser's push subscription keys: p256dh and auth to save, and what it takes to read
    the payload a push service received for it."""

    def __init__(self):
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.auth_secret = os.urandom(16)
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.p256dh = _b64(public)
        self.auth = _b64(self.auth_secret)

    def decrypt(self, body: bytes) -> dict:
        plain = http_ece.decrypt(
            body, private_key=self.private_key, auth_secret=self.auth_secret, version="aes128gcm"
        )
        return json.loads(plain)


def vapid_key_pair() -> tuple[str, str]:
    """(private key PEM, application server public key as browsers get it)."""
    vapid = Vapid()
    vapid.generate_keys()
    public = vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return vapid.private_pem().decode(), _b64(public)
