"""OpenDPIA: collaborative Data Protection Impact Assessments."""

__version__ = "0.1.0"
