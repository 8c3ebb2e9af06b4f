from farm.db.models import (FINAL_STATES, JOB_STATES, Artifact, Base, Device, Job, Measurement, Model,
                            Sweep, utcnow)
from farm.db.session import engine_for, session_scope, upgrade

__all__ = ["Artifact", "Base", "Device", "FINAL_STATES", "JOB_STATES", "Job", "Measurement", "Model",
           "Sweep", "engine_for", "session_scope", "upgrade", "utcnow"]
