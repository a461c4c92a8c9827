"""The problem types of the API, each at the address its `type` URI names."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from gateway.problem_types import BY_NAME, PROBLEM_TYPES, ProblemType
from gateway.schemas.common import example, problem_responses
from meshkit.errors import NotFound

router = APIRouter(tags=["operations"])


class ProblemTypeOut(BaseModel):
    """One kind of failure: what a problem's `type` names."""

    model_config = example(
        {
            "type": PROBLEM_TYPES["OUT_OF_STOCK"].uri,
            "reason": "OUT_OF_STOCK",
            "statuses": list(PROBLEM_TYPES["OUT_OF_STOCK"].statuses),
            "summary": PROBLEM_TYPES["OUT_OF_STOCK"].summary,
        }
    )

    type: str
    reason: str
    statuses: list[int]
    summary: str


def _out(problem: ProblemType) -> ProblemTypeOut:
    return ProblemTypeOut(
        type=problem.uri,
        reason=problem.reason,
        statuses=list(problem.statuses),
        summary=problem.summary,
    )


@router.get("/problems", summary="Every problem type the API answers with")
async def list_problem_types() -> list[ProblemTypeOut]:
    return [_out(problem) for problem in PROBLEM_TYPES.values()]


@router.get(
    "/problems/{name}",
    summary="One problem type: what a problem's `type` URI names",
    responses=problem_responses(404),
)
async def get_problem_type(name: str) -> ProblemTypeOut:
    problem = BY_NAME.get(name)
    if problem is None:
        raise NotFound(f"No problem type is named {name[:64]!r}.")
    return _out(problem)
