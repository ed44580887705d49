"""The synthetic maison generator behind `crossgroup synth` (see docs/synthetic-data.md).

world: model parameters; pools: Faker and phone-prefix vocabularies; maisons: per-maison
parameters; persons, customers, purchases: one chunk at a time; writer: streams to Parquet.
"""
