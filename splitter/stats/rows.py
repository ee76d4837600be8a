"""One row of sufficient statistics as a file holds it (`tritonab stats compare FILE`).

Columns: `variant`, `metric`, `kind` (`mean` | `proportion` | `ratio`) and `n` always;
`sum`, `sum_squares` for a mean; `successes` for a proportion; `num_sum`,
`num_sum_squares`, `den_sum`, `den_sum_squares`, `num_den_sum` for a ratio. Rows that
share (variant, metric) are added: days, strata or instances combine.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tritonab.errors import StatsError
from tritonab.splitter.stats._sufficient import Proportion, Ratio, SampleMean

FIELDS: dict[str, tuple[str, ...]] = {
    "mean": ("sum", "sum_squares"),
    "proportion": ("successes",),
    "ratio": ("num_sum", "num_sum_squares", "den_sum", "den_sum_squares", "num_den_sum"),
}


class StatRow(BaseModel):
    """One row of sufficient statistics for one (variant, metric)."""

    model_config = ConfigDict(extra="forbid")

    variant: str = Field(min_length=1, description="the variant (the first in a file is the control)")
    metric: str = Field(min_length=1)
    kind: Literal["mean", "proportion", "ratio"]
    n: float = Field(ge=0, description="units")
    sum: float | None = Field(default=None, description="mean: sum of the values")
    sum_squares: float | None = Field(default=None, description="mean: sum of the squared values")
    successes: float | None = Field(default=None, description="proportion: units that converted")
    num_sum: float | None = Field(default=None, description="ratio: sum of the numerators")
    num_sum_squares: float | None = None
    den_sum: float | None = Field(default=None, description="ratio: sum of the denominators")
    den_sum_squares: float | None = None
    num_den_sum: float | None = Field(default=None, description="ratio: sum of numerator x denominator")

    def statistic(self) -> SampleMean | Proportion | Ratio:
        """The sufficient statistic this row describes.

        Raises:
            StatsError: a column its kind needs is empty.
        """
        names = FIELDS[self.kind]
        values = [getattr(self, f) for f in names]
        missing = [f for f, val in zip(names, values) if val is None]
        if missing:
            raise StatsError(
                f"row for `{self.variant}`/`{self.metric}` ({self.kind}) lacks {', '.join(missing)}"
            )
        if self.kind == "mean":
            return SampleMean(self.n, *values)
        if self.kind == "proportion":
            return Proportion(self.n, *values)
        return Ratio(self.n, *values)
