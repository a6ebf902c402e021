"""A real SMTP server for the tests (aiosmtpd): accepts every message on
127.0.0.1:<port> and prints each one as a JSON line on stdout — envelope,
decoded headers and the decoded text body — so a test can check what a mail
reader would see. Prints `ready` once listening; runs until stdin closes."""

import email
import json
import sys
from email import policy

from aiosmtpd.controller import Controller


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
                }
            ),
            flush=True,
        )
        return "250 2.0.0 Ok: queued"


def main():
    controller = Controller(Sink(), hostname="127.0.0.1", port=int(sys.argv[1]))
    controller.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
