"""An HTTP service over a deployed policy: requests in, one decision each, paced online so the
running mean planned cost tracks the budget (``toolkit.pacing``).

    stl serve --policy policy/ --budget 16 -c id=idx -c text=problem --port 8000

- ``POST /allocate``: a JSON object (one request) or a list of them, keyed by the columns
  ``--columns`` names. 200: ``{"decisions": [...], "price": mu}``, one decision per request as
  ``stl allocate`` writes them. A bad body or record: 422 with ``{"error": ...}`` naming the
  row and field; nothing of it counts in the pacing.
- ``GET /health``: 200 with the run the policy came from and the budget.
- ``GET /stats``: requests so far, their running mean planned cost, the current price and the
  pacing state (``PacerStats``), per process.

Every request is decided on the event loop's thread, one at a time (the pacing state is one
sequence), and no thread is started: a DuckDB query must not run while Python threads start or
stop (``toolkit.tokens``). FastAPI routes the requests and uvicorn serves them; SIGTERM or
Ctrl-C stops it after the requests in flight.
"""

import json
import math

from toolkit.errors import StudyError


def create_app(policy, budget: float, columns: dict[str, str], **pacing):
    """The ASGI application over ``policy`` (a ``toolkit.deploy.BudgetPolicy``) at ``budget``;
    ``pacing``: ``BudgetPacer``'s window, horizon and seed."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    from toolkit.ingest import RequestReader
    from toolkit.pacing import BudgetPacer

    policy.feature_threads = 1  # a request is a few records: one DuckDB thread is quicker
    pacer = BudgetPacer(policy, budget, **pacing)
    reader = RequestReader(policy.study, columns, threads=1)
    app = FastAPI(title="stl serve", docs_url=None, redoc_url=None)

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.post("/allocate")
    async def allocate(request: Request):
        try:
            body = json.loads(await request.body())
        except ValueError as problem:
            return error(422, f"body: not JSON ({problem})")
        records = [body] if isinstance(body, dict) else body
        try:
            requests = reader.records(records, where="request")
            decisions = pacer.allocate(requests)
        except StudyError as problem:
            return error(422, str(problem))
        rows = decisions.drop_columns(["price"]).to_pylist()
        return {"decisions": rows, "price": _number(pacer.stats().price)}

    @app.get("/health")
    async def health():
        return {
            "status": "ok",
            "run_id": policy.run_id,
            "config_hash": policy.study.config_hash(),
            "budget": budget,
            "columns": columns,
        }

    @app.get("/stats")
    async def stats():
        return {key: _number(value) for key, value in pacer.stats().as_dict().items()}

    app.state.pacer = pacer
    app.state.reader = reader
    return app


def _number(value):
    """JSON has no NaN or inf: an undefined number is null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def run(app, host: str, port: int) -> None:
    """Serve ``app`` until SIGTERM or Ctrl-C (uvicorn's handlers), then close it."""
    import uvicorn

    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    finally:
        app.state.reader.close()


__all__ = ["create_app", "run"]
