"""Baseline: a bare FastAPI hello world, served by uvicorn with the gateway's settings."""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def hello() -> dict[str, str]:
    return {"message": "Hello World"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1, help="as many as the gateway runs")
    args = parser.parse_args()
    # The same call as gateway/__main__.py: uvloop and httptools when installed, no access log.
    uvicorn.run(
        app if args.workers == 1 else "bench.baselines.hello_app:app",
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=1,
    )


if __name__ == "__main__":
    main()
