"""Choose the final model by CV only: the best single (candidate, learner) or an average of the top k."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from matlib.transfer.cv import CVResult, cv_scores


@dataclass
class Selection:
    """The chosen members (keys into the pool) and the CV score of their averaged predictions."""

    members: list[str]
    cv: CVResult
    table: pd.DataFrame  # k, members, cv_mae, cv_rmse for every ensemble size tried


def select_ensemble(pool: dict[str, np.ndarray], y: np.ndarray, max_k: int = 5, tol: float = 0.0) -> Selection:
    """Greedy top-k by single CV MAE; keep the k whose averaged out-of-fold MAE is lowest (ties: smaller k)."""
    if not pool:
        raise ValueError("empty selection pool")
    single = sorted(pool, key=lambda key: (cv_scores(pool[key], y).mae, key))
    rows, best = [], None
    for k in range(1, min(max_k, len(single)) + 1):
        members = single[:k]
        res = cv_scores(np.mean([pool[m] for m in members], axis=0), y)
        rows.append({"k": k, "members": ", ".join(members), "cv_mae": res.mae, "cv_rmse": res.rmse})
        if best is None or res.mae < best[1].mae * (1 - tol):
            best = (members, res)
    return Selection(best[0], best[1], pd.DataFrame(rows))
