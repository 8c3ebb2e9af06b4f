"""A job's accuracy check: every evaluation batch against the fp32
reference, judged by farm.accuracy_eval.

The reference outputs of each batch are cached per worker (model_cache),
keyed by the model, the data, the rows and the shapes: every job of a sweep
on this worker compares against one computation of them.
"""

from __future__ import annotations

from workers.backends.base import JobContext, Runner
from workers.model_cache import SourceModel, reference_key, reference_outputs


def check_accuracy(runner: Runner, ctx: JobContext, config: dict, source: SourceModel) -> dict:
    from farm.accuracy import is_reference
    from farm.accuracy_eval import evaluate_batches

    rows = (ctx.rows or {}).get("evaluation")

    def batches():  # one batch's outputs in memory at a time
        for index, (feeds, valid) in enumerate(ctx.evaluation_batches()):
            key = reference_key(source, config.get("data_sha256"), ctx.run_shapes) + (tuple(rows or ()), index)
            yield runner.infer(feeds), reference_outputs(source, key, feeds), valid

    return evaluate_batches(batches(), ctx.precision, config["accuracy"], reference_job=is_reference(config),
                            inputs=ctx.input_provenance())
