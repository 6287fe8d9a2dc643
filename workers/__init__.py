"""Job execution: what a job computes (:mod:`workers.tasks`) and the RQ worker (:mod:`workers.worker`)."""
