"""Parameters many routes share: ids, in paths and in queries."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

# No id the mesh issues is longer (the product service refuses longer ones too). Bounded here,
# a client's id cannot grow the upstream call, nor the error a service writes that quotes it.
ID_MAX_LENGTH = 64

# An id over the bound names no resource: the problem handlers answer 404 for it, as the
# services answer for any unknown id.
PathId = Annotated[str, Path(max_length=ID_MAX_LENGTH)]
QueryId = Annotated[str, Query(max_length=ID_MAX_LENGTH)]
