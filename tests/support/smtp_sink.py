"""A real SMTP server for the tests (aiosmtpd): accepts every message on
127.0.0.1:<port> and prints each one as a JSON line on stdout — envelope,
decoded headers and the decoded text body, and the user that logged in — so
a test can check what a mail reader would see. With a third argument
`user:password`, AUTH (PLAIN, LOGIN) is required and checked; it is offered
without TLS, as a relay on loopback may. Prints `ready` once listening; runs
until stdin closes."""

import email
import json
import sys
from email import policy

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def login_of(session):
    data = session.login_data if session.authenticated else None
    if isinstance(data, LoginPassword):
        data = data.login
    return data.decode() if isinstance(data, bytes) else data


class Sink:
    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        body = msg.get_body(preferencelist=("plain",))
        print(
            json.dumps(
                {
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": envelope.rcpt_tos,
                    "from": str(msg["from"]),
                    "to": str(msg["to"]),
                    "subject": str(msg["subject"]),
                    "message_id": str(msg["message-id"]),
                    "content_type": msg.get_content_type(),
                    "charset": msg.get_content_charset(),
                    "body": body.get_content() if body is not None else None,
                    "login": login_of(session),
                }
            ),
            flush=True,
        )
        return "250 2.0.0 Ok: queued"


class Authenticator:
    def __init__(self, user, password):
        self.user, self.password = user.encode(), password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (self.user, self.password)
        return AuthResult(success=ok, auth_data=auth_data if ok else None)


def main():
    options = {}
    if len(sys.argv) > 2:
        user, password = sys.argv[2].split(":", 1)
        options = {"authenticator": Authenticator(user, password), "auth_required": True, "auth_require_tls": False}
    controller = Controller(Sink(), hostname="127.0.0.1", port=int(sys.argv[1]), **options)
    controller.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
