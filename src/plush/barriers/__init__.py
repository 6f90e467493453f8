"""The barrier manager: full, partial (max/threshold/timeout/adaptive) and semaphore barriers shared
by name across components, and the workflow item queue. Pure state machines driven with the current time.
"""
