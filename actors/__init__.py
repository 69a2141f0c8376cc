"""Lynkr's pykka actors: state owners and supervisors. Imports only `eventstore`."""

from __future__ import annotations

from actors._trio import TrioActor, TrioFuture, run_in_actor_thread

__all__ = ["TrioActor", "TrioFuture", "run_in_actor_thread"]
