"""The contract-test kit: strategies, runner, checks and reports holding a client to SPEC 3.

It talks to an emulator only over HTTP and its admin API, as any user would.
"""
