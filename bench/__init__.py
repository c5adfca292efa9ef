"""Benchmarks for Rapport (run them as scripts: `.venv/bin/python bench/bench_serve.py`)."""
