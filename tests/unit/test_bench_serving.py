"""The serving benchmark's arithmetic: rounds become medians, and the tables show every ceiling ratio."""

from tabpipe.bench import serving


def figures(rps: float, p50: float, errors: int = 0) -> dict[str, float]:
    return {"rps": rps, "p50_ms": p50, "p99_ms": p50 * 4, "requests": int(rps * 10), "errors": errors}


def test_rounds_become_medians_with_requests_and_errors_summed() -> None:
    rounds = [figures(1000.0, 2.0), figures(400.0, 5.0, errors=1), figures(900.0, 2.5)]
    summary = serving.summary(rounds, 1000)
    assert summary["rps"] == 900.0 and summary["p50_ms"] == 2.5 and summary["p99_ms"] == 10.0
    assert summary["requests"] == 23000 and summary["errors"] == 1
    assert summary["rounds"] == [1000.0, 400.0, 900.0] and summary["rows_per_s"] == 900_000
    assert "rows_per_s" not in serving.summary(rounds, 1)


def test_the_tables_give_each_family_its_own_ceiling_ratios() -> None:
    def server(rps: float) -> dict:
        return {
            "single": {str(c): serving.summary([figures(rps, 1.0)], 1) for c in (1, 8)},
            "batch": {"10": serving.summary([figures(rps / 10, 5.0)], 10)},
        }

    results = {
        family: {"in_process": {"pipeline_row_ms": 5.0, "compiled_row_ms": 0.1}}
        | {"ours": server(ours) | {"explain": serving.summary([figures(ours / 100, 7.5)], 1)}}
        | {"ceiling": server(1000.0), "ceiling_standard": server(500.0)}
        for family, ours in (("logreg", 800.0), ("lightgbm", 600.0))
    }
    text = serving.table(results, [1, 8], [10])
    assert "| logreg | 0.80x | 1.60x | 0.80x | 1.0, 1.0 | 7.5 | 5.0, 0.1 |" in text
    assert "| lightgbm | 0.60x | 1.20x | 0.60x | 1.0, 1.0 | 7.5 |" in text
    assert "| lightgbm | BentoML ceiling (constant, finished response) | 1000 | 1000 |" in text
    assert "ours / FastAPI" not in text  # --no-peers
