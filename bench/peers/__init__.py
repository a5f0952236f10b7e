"""The task queues people use today, set up for the same no-op workload as Theazo."""
