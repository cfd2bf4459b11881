"""The quiz engine: items from the bank, rounds, answer checking, scoring, calibration, review scheduling.

Pure and deterministic: the same bank, round and seed always give the same items in the same order.
"""
