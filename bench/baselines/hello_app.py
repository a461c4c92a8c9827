"""Baseline: a bare FastAPI hello world, served by uvicorn with the gateway's settings."""

from __future__ import annotations

import argparse

from fastapi import FastAPI

from bench.baselines.serving import run_http

app = FastAPI()


@app.get("/")
async def hello() -> dict[str, str]:
    return {"message": "Hello World"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1, help="as many as the gateway runs")
    args = parser.parse_args()
    run_http(app, "bench.baselines.hello_app:app", port=args.port, workers=args.workers)


if __name__ == "__main__":
    main()
