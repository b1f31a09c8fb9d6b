"""The ``Store`` port (``base``, ``records``), the logic both adapters share, and one folder per
adapter: ``sqlite`` (embedded) and ``mongo``."""
