"""The search's summary lines (farm run --search, farm sweep drive): no Python
None in user output, and each reused count says what it counts."""

from farm.cli.sweep_cmd import search_lines

SUMMARY = {"strategy": "quick", "objective": "latency", "state": "done", "saving": "3 of 8 configurations built",
           "budget": 8, "reused": 2, "pruned": 1, "skipped": 0, "in_flight": 0, "history": [], "reasons": {},
           "finals": [], "result": {}}


def test_a_group_without_a_winner_says_so_in_words():
    summary = {**SUMMARY, "result": {
        "cpu.x86_64.amd-epyc|w0": {"winner": None, "tied": [], "decided_by": "no configuration met the constraints"},
        "cpu.x86_64.intel-xeon|w0": {"winner": "j1", "tied": ["j2"], "decided_by": "finals"}}}
    lines = search_lines(summary)
    assert "  no winner on cpu.x86_64.amd-epyc: no configuration met the constraints" in lines
    assert "  winner cpu.x86_64.intel-xeon: j1 (finals), tied: j2" in lines
    assert not any("None" in line for line in lines)


def test_the_search_line_counts_reuse_over_all_steps():
    assert search_lines(SUMMARY)[0] == ("search: quick (latency), done: 3 of 8 configurations built (budget 8; "
                                        "over all steps: 2 reused, 1 pruned, 0 skipped, 0 running)")
