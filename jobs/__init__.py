"""A bisection as a Sisyphus graph. `jobs.plan` (what to train) and `jobs.gather` (results from finished scores)
are plain Python; `jobs.bisect_jobs` (the Job classes) and `jobs.graph` (the wiring) need RWTH Sisyphus. This
package imports none of them: nothing outside `jobs/` imports Sisyphus."""
