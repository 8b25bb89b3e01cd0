"""Money is shown with the digits that tell two amounts apart (issue 24, item 8).

``--max-cost 0.0104`` was refused with "at most 0.01 ..., over --max-cost 0.01":
two amounts that read the same. The limit is shown as it was given, and the
amount with as many digits as it takes to differ from it.
"""

from __future__ import annotations

import re
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

from cohere_batch_cli.exit_codes import ExitCode
from tests.conftest import Cli
from tests.support.flows import write_jsonl
from tests.test_estimate import CHATS, PRICES, estimate_json


def test_a_cost_just_over_max_cost_reads_over_it(cli: Cli, sandbox: Any, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "priced.jsonl", CHATS)
    estimate = estimate_json(cli, str(path), "--model", "command-r-08-2024", env=PRICES)
    bound = Decimal(str(estimate["cost"]["total_bound"]))
    limit = bound.quantize(Decimal("0.0001"), rounding=ROUND_FLOOR)
    if limit == bound:
        limit -= Decimal("0.0001")
    assert limit.quantize(Decimal("0.01")) == bound.quantize(Decimal("0.01")), "not a close call"
    refused = cli(
        "create", "--file", str(path), "-m", "command-r-08-2024", "--max-cost", str(limit),
        exit_code=ExitCode.REFUSED, env=PRICES,
    )  # fmt: skip
    found = re.search(r"at most ([\d.,]+) \(.*\), over --max-cost ([\d.,]+)", refused.stderr)
    assert found is not None, refused.stderr
    shown, over = found.groups()
    assert over == str(limit) and Decimal(shown) > Decimal(over), refused.stderr
