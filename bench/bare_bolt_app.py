"""Baseline for bench_serve.py: a bare Bolt app answering `/crm` with a fixed payload, served by waitress.

    SLACK_BOT_TOKEN=xoxb-… SLACK_SIGNING_SECRET=… SLACK_API_URL=http://…/api/ \
        python bench/bare_bolt_app.py --port 3001 --payload help.json

Same server (waitress, same thread count as `rapport serve`), same adapter (slack_bolt's WSGI SlackRequestHandler),
same answer (the JSON in --payload, captured from Rapport's own `/crm help`), and nothing else: no database, no
middleware, no templates. `GET /healthz` answers 200 without touching anything.
"""

import argparse
import json
import os

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from waitress import serve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--payload", required=True, help="JSON file with the ack body (text, blocks, ...)")
    parser.add_argument("--threads", type=int, default=16, help="waitress threads (rapport serve uses 16)")
    parser.add_argument(
        "--process-before-response",
        action="store_true",
        help="run the listener on the request thread (Rapport does not; without it Bolt polls for the ack every 10 ms)",
    )
    args = parser.parse_args()

    with open(args.payload, encoding="utf-8") as f:
        payload = json.load(f)

    app = App(
        signing_secret=os.environ["SLACK_SIGNING_SECRET"],
        process_before_response=args.process_before_response,
        # The token goes in the client: Bolt ignores App(token=...) when a client is given.
        client=WebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"]),
    )

    @app.command("/crm")
    def crm(ack):
        ack(**payload)

    bolt = SlackRequestHandler(app)
    health = json.dumps({"ok": True}).encode()

    def wsgi(environ, start_response):
        if environ.get("PATH_INFO") == "/healthz":
            start_response(
                "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(health)))]
            )
            return [health]
        return bolt(environ, start_response)

    serve(wsgi, host=args.host, port=args.port, threads=args.threads, ident="bare-bolt", _quiet=True)


if __name__ == "__main__":
    main()
