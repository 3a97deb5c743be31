"""Executors decide where the plan's missing runs train: `runner.LocalExecutor` in this process
(the default), `ray_executor.RayExecutor` on a Ray cluster. Both write the same cache entries and offer
the same interface: `name`, and `run(jobs, on_event)` yielding `(job, results)` as each job finishes.
"""
