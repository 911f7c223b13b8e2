"""One Fits All's and Tan et al.'s claims (issue #27): verdicts computed from the time-series runs,
in the README's claims block, and changing when the numbers do."""
import copy

from fptlib import files, paper, report, results

GPT4TS = "GPT4TS: frozen, language-pretrained"
BASELINES = {"majority class": {"test": 0.084}, "logistic regression": {"test": 0.976}}


def _committed():
    return [r for r in results.load(files.committed_evidence_dir()) if r["key"].startswith("japanese-vowels")]


def _with_gpt4ts_at(records, accuracy):
    out = copy.deepcopy(records)
    for r in out:
        if r["label"]["row"] == GPT4TS:
            for e in r["evals"]:
                e["test"]["accuracy"] = accuracy
            for part in ("final", "best"):
                r[part]["test"]["accuracy"] = accuracy
    return out


def test_every_anchor_claim_has_a_row_labelled_as_theirs():
    table = report.timeseries_claims(records=_committed(), baselines=BASELINES)
    assert len(table.rows) == len(paper.TIMESERIES_CLAIMS) == 4
    assert all("One Fits All" in r["claim (whose)"] or "Tan et al." in r["claim (whose)"] for r in table.rows)
    assert all("not run" not in r["ours: mean ± sd % (seeds)"] for r in table.rows)
    assert any("not GPT-2" in n for n in table.notes)


def test_the_verdicts_change_with_the_numbers():
    low = report.timeseries_claims(records=_with_gpt4ts_at(_committed(), 0.80), baselines=BASELINES)
    high = report.timeseries_claims(records=_with_gpt4ts_at(_committed(), 0.999), baselines=BASELINES)
    beats = next(i for i, c in enumerate(paper.TIMESERIES_CLAIMS) if c.relation == ">")
    assert low.rows[beats]["verdict"] != high.rows[beats]["verdict"]
    assert "lower" in low.rows[beats]["against the majority class only"]
    assert "higher" in high.rows[beats]["against the majority class only"]
    none = report.timeseries_claims(records=[], baselines=BASELINES)
    assert {r["verdict"] for r in none.rows} == {"not run here"}


def test_the_readme_block_holds_the_anchor_claims():
    text = (files.repo_root() / "README.md").read_text(encoding="utf-8")
    block = text[text.index("<!-- claims:begin -->"): text.index("<!-- claims:end -->")]
    assert "One Fits All's and Tan et al.'s claims" in block
    assert all(c.text in block for c in paper.TIMESERIES_CLAIMS)


def test_the_time_series_table_does_not_call_its_task_the_papers():
    from fptlib import experiments
    table = report.run_set_table("timeseries", "evidence", directory=files.committed_evidence_dir(),
                                 backbone=experiments.EVIDENCE_BACKBONE)
    ran = {r.get("ran on") for r in table.rows if r.get("seeds")}
    assert ran and all(str(x).startswith("a task beyond the paper") for x in ran)
