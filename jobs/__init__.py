"""The job machinery, shared by the API (:mod:`service`) and the workers.

- :mod:`jobs.settings` the job layer's settings (the API's extend them in :mod:`service.config`);
  :mod:`jobs.keys` every Redis key and TTL;
- :mod:`jobs.specs` a computation as a JSON spec, its cache key and job id, its cost;
- :mod:`jobs.codec` the byte format of stored values; :mod:`jobs.store` memory and Redis stores;
- :mod:`jobs.states` job states and views; :mod:`jobs.errors` why a job stopped;
- :mod:`jobs.progress` the job-side progress reporter (sink, cancel, deadline);
- :mod:`jobs.compute` what a job runs: spec -> stored result;
- :mod:`jobs.backend` the protocol every executor follows, :mod:`jobs.local` the in-process
  pool, :mod:`jobs.rq_queue` the RQ queue; :mod:`jobs.worker` the RQ worker (``eoc-ntk worker``).
- :mod:`jobs.resource` the job resource as JSON; :mod:`jobs.webhooks` job webhooks (registration,
  the dispatcher, signed deliveries with retries), :mod:`jobs.webhook_guard` where they may go
  (SSRF), :mod:`jobs.webhook_http` one attempt, :mod:`jobs.webhook_worker` Redis mode's delivery
  process beside each worker.

Imports point down only: this package imports the core (:mod:`eoc_ntk`), never :mod:`service`.
"""
