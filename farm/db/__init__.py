from farm.db.models import (FINAL_STATES, JOB_STATES, Artifact, Base, Device, FinalRound, Finals, Job,
                            Measurement, Model, Search, SearchCandidate, Sweep, utcnow)
from farm.db.session import engine_for, session_scope, statement_scope, upgrade

__all__ = ["Artifact", "Base", "Device", "FINAL_STATES", "JOB_STATES", "Job", "Measurement", "Model",
           "Search", "SearchCandidate", "Finals", "FinalRound", "Sweep", "engine_for", "session_scope", "statement_scope",
           "upgrade", "utcnow"]
